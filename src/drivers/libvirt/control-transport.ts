/**
 * The connection the source's libvirtd opens to the target's for a
 * peer-to-peer migration (the inventory's libvirt_uri, qemu+ssh by default)
 * carries the migration's control, so ferry never lets it be a socket that
 * anyone who reaches the target may use: qemu+tcp is plain TCP, and a
 * target whose libvirt takes TCP clients without authentication
 * (auth_tcp = "none") is refused unless the URI stays on loopback, as in
 * the lab.
 */
import { FerryError } from '../../util/errors.js';
import { isLoopback } from '../../util/net.js';

/** The host a plain-TCP libvirt URI (qemu+tcp://HOST/system) connects to, '' for this one; undefined for every other transport. */
export function plainTcpHost(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  return url.protocol.replace(/:$/, '').split('+')[1] === 'tcp' ? url.hostname : undefined;
}

/**
 * Refuses `uri`, by which the source's libvirtd reaches `target`'s, when it
 * is plain TCP to a libvirt that authenticates no TCP client (`tcpAuth`,
 * from the target's admission) and leaves this machine. `resolve` gives a
 * host name's addresses as the source sees them.
 */
export async function checkControlTransport(uri: string, target: string, tcpAuth: string | undefined, resolve: (name: string) => Promise<string[]>): Promise<void> {
  const host = plainTcpHost(uri);
  if (host === undefined || tcpAuth !== 'none') return;
  const literal = host === '' || /^[\d.]+$/.test(host) || host.startsWith('[');
  const addresses = literal ? [host || '127.0.0.1'] : await resolve(host);
  if (addresses.length && addresses.every(isLoopback)) return;
  throw new FerryError(
    'INSECURE_TRANSPORT',
    `libvirt on "${target}" takes TCP clients without authentication (auth_tcp = "none"): the migration's control connection "${uri}" would be open to anyone who reaches ${host}`,
    {
      hint: `reach it over ssh (drop libvirt_uri for "${target}" from the inventory: qemu+ssh is the default) or TLS (qemu+tls://), or set auth_tcp = "sasl" in its libvirtd.conf`,
    },
  );
}
