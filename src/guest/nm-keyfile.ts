/** NetworkManager keyfiles (/etc/NetworkManager/system-connections/*.nmconnection). */
import { normaliseMac, type NetConfig } from './network-config.js';

export type IniSections = Map<string, Map<string, string>>;

export function parseIni(text: string): IniSections {
  const sections: IniSections = new Map();
  let current: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]!) ?? new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return sections;
}

export function parseNmKeyfile(file: string, text: string): NetConfig | undefined {
  const ini = parseIni(text);
  const connection = ini.get('connection');
  const type = connection?.get('type');
  if (type !== 'ethernet' && type !== '802-3-ethernet') return undefined;
  const ipv4 = ini.get('ipv4') ?? new Map<string, string>();
  const addresses: string[] = [];
  let gateway = ipv4.get('gateway');
  for (const [k, v] of ipv4) {
    if (!/^address(es)?\d*$/.test(k)) continue;
    for (const a of v.split(';').filter(Boolean)) {
      const [addr, gw] = a.split(',');
      addresses.push(addr!.trim());
      if (gw && !gateway) gateway = gw.trim();
    }
  }
  const method = ipv4.get('method') === 'auto' ? 'dhcp' : ipv4.get('method') === 'manual' ? 'static' : 'other';
  const mac = ini.get('ethernet')?.get('mac-address') ?? ini.get('802-3-ethernet')?.get('mac-address');
  return { file, format: 'nm-keyfile', interface: connection?.get('interface-name'), mac: mac ? normaliseMac(mac) : undefined, method, addresses, gateway };
}

/** Replaces `mac-address=` in the ethernet section; undefined removes the binding line. */
export function setNmKeyfileMac(text: string, mac: string | undefined): string {
  return text
    .split('\n')
    .flatMap((l) => (/^\s*mac-address\s*=/.test(l) ? (mac === undefined ? [] : [`mac-address=${mac.toUpperCase()}`]) : [l]))
    .join('\n');
}
