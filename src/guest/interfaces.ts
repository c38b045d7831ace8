/** Debian's /etc/network/interfaces (ifupdown). */
import { normaliseMac, netmaskToPrefix, type NetConfig } from './network-config.js';

export interface InterfacesFile {
  configs: NetConfig[];
  /** Interfaces brought up at boot (auto and allow-hotplug). */
  auto: string[];
  /** Globs of further files (`source /etc/network/interfaces.d/*`). */
  sources: string[];
}

export function parseInterfaces(file: string, text: string): InterfacesFile {
  const configs: NetConfig[] = [];
  const auto: string[] = [];
  const sources: string[] = [];
  let current: NetConfig | undefined;
  let netmask: string | undefined;
  const finish = (): void => {
    if (current && netmask && current.addresses.length > 0 && !current.addresses[0]!.includes('/')) {
      const prefix = netmaskToPrefix(netmask);
      if (prefix !== undefined) current.addresses[0] = `${current.addresses[0]}/${prefix}`;
    }
    netmask = undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [word, ...rest] = line.split(/\s+/) as [string, ...string[]];
    switch (word) {
      case 'auto':
      case 'allow-auto':
      case 'allow-hotplug':
        finish();
        current = undefined;
        auto.push(...rest);
        break;
      case 'source':
      case 'source-directory':
        finish();
        current = undefined;
        sources.push(word === 'source-directory' ? `${rest[0]}/*` : rest[0]!);
        break;
      case 'iface': {
        finish();
        const [name, family, method] = rest;
        const m: NetConfig['method'] = method === 'static' || method === 'dhcp' || method === 'manual' || method === 'loopback' ? method : 'other';
        current = { file, format: 'interfaces', interface: name, method: m, addresses: [] };
        if (family === 'inet' || family === 'inet6') configs.push(current);
        break;
      }
      case 'mapping':
        finish();
        current = undefined;
        break;
      default:
        if (!current) break;
        if (word === 'address') current.addresses.push(rest[0]!);
        else if (word === 'netmask') netmask = rest[0];
        else if (word === 'gateway') current.gateway = rest[0];
        else if (word === 'hwaddress') current.mac = normaliseMac(rest[rest.length - 1]!);
    }
  }
  finish();
  return { configs, auto, sources };
}
