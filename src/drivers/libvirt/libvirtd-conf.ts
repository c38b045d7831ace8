/**
 * What a libvirtd.conf (or virtproxyd.conf, the modular daemons' remote
 * access) says of TCP clients: how they are authenticated (auth_tcp).
 * libvirt's own default, when the file does not set it, is "sasl".
 */
export function authTcpOf(conf: string | undefined): string {
  let value = 'sasl';
  for (const line of (conf ?? '').split('\n')) {
    const m = /^\s*auth_tcp\s*=\s*"([^"]*)"/.exec(line);
    if (m) value = m[1]!;
  }
  return value;
}

/** The weakest of the daemons' settings: "none" if any of them takes TCP clients unauthenticated. */
export function weakestAuthTcp(confs: ReadonlyArray<string | undefined>): string {
  const values = confs.map(authTcpOf);
  return values.includes('none') ? 'none' : (values[0] ?? 'sasl');
}
