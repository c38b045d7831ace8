/** netplan YAML (/etc/netplan/*.yaml): ethernets matched by name or MAC. */
import { parseDocument, isMap, type Document } from 'yaml';
import { normaliseMac, type NetConfig } from './network-config.js';

interface NetplanEthernet {
  match?: { macaddress?: string; name?: string };
  'set-name'?: string;
  dhcp4?: boolean | string;
  addresses?: string[];
  gateway4?: string;
  routes?: { to?: string; via?: string }[];
}

export function parseNetplan(file: string, text: string): NetConfig[] {
  const doc = parseDocument(text);
  const network = doc.toJS() as { network?: { ethernets?: Record<string, NetplanEthernet> } } | null;
  const ethernets = network?.network?.ethernets ?? {};
  return Object.entries(ethernets).map(([id, e]) => {
    const dhcp = e.dhcp4 === true || e.dhcp4 === 'true' || e.dhcp4 === 'yes';
    const addresses = (e.addresses ?? []).map(String);
    const gateway = e.gateway4 ?? e.routes?.find((r) => r.to === 'default' || r.to === '0.0.0.0/0')?.via;
    return {
      file,
      format: 'netplan' as const,
      interface: e['set-name'] ?? e.match?.name ?? (e.match?.macaddress ? undefined : id),
      mac: e.match?.macaddress ? normaliseMac(e.match.macaddress) : undefined,
      method: dhcp ? ('dhcp' as const) : addresses.length > 0 ? ('static' as const) : ('manual' as const),
      addresses,
      gateway,
    };
  });
}

/** Replaces `match: macaddress:` values, keeping comments and layout (yaml's Document API). */
export function replaceNetplanMacs(text: string, replace: (mac: string) => string | undefined): string {
  const doc: Document = parseDocument(text);
  const ethernets = doc.getIn(['network', 'ethernets']);
  if (!isMap(ethernets)) return text;
  let changed = false;
  for (const pair of ethernets.items) {
    const id = String((pair.key as { value?: unknown })?.value ?? pair.key);
    const mac = doc.getIn(['network', 'ethernets', id, 'match', 'macaddress']);
    if (typeof mac !== 'string') continue;
    const next = replace(normaliseMac(mac));
    if (next === undefined) continue;
    doc.setIn(['network', 'ethernets', id, 'match', 'macaddress'], next);
    changed = true;
  }
  return changed ? doc.toString() : text;
}
