/** Red Hat style /etc/sysconfig/network-scripts/ifcfg-* files. */
import { normaliseMac, netmaskToPrefix, type NetConfig } from './network-config.js';
import { setShellVar, shellVarMap } from './shell-vars.js';

export function parseIfcfg(file: string, text: string): NetConfig {
  const v = shellVarMap(text);
  const name = v.get('DEVICE') ?? file.replace(/^.*\/ifcfg-/, '');
  const proto = (v.get('BOOTPROTO') ?? 'none').toLowerCase();
  const addresses: string[] = [];
  for (const suffix of ['', '0', '1', '2', '3']) {
    const ip = v.get(`IPADDR${suffix}`);
    if (!ip) continue;
    const prefix = v.get(`PREFIX${suffix}`) ?? (v.get(`NETMASK${suffix}`) ? String(netmaskToPrefix(v.get(`NETMASK${suffix}`)!) ?? '') : '');
    addresses.push(prefix ? `${ip}/${prefix}` : ip);
  }
  const method: NetConfig['method'] = proto === 'dhcp' ? 'dhcp' : name === 'lo' ? 'loopback' : addresses.length > 0 ? 'static' : 'manual';
  const mac = v.get('HWADDR') ?? v.get('MACADDR');
  return { file, format: 'ifcfg', interface: name, mac: mac ? normaliseMac(mac) : undefined, method, addresses, gateway: v.get('GATEWAY') };
}

/** Replaces the HWADDR the file is bound to, or unbinds it (value undefined comments it out). */
export function setIfcfgHwaddr(text: string, mac: string | undefined): string {
  return setShellVar(text, 'HWADDR', mac?.toUpperCase());
}
