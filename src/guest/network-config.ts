/** The network facts ferry gathers from every configuration format, in one shape. */
export interface NetConfig {
  /** Path inside the guest. */
  file: string;
  format: 'ifcfg' | 'interfaces' | 'netplan' | 'nm-keyfile';
  /** Interface name the configuration applies to, when it names one. */
  interface?: string;
  /** MAC address the configuration is bound to (HWADDR, match: macaddress, mac-address). */
  mac?: string;
  method: 'static' | 'dhcp' | 'manual' | 'loopback' | 'other';
  /** Addresses in CIDR form. */
  addresses: string[];
  gateway?: string;
}

/** A rule that gives the interface with a MAC a fixed name (udev persistent-net, systemd .link). */
export interface NameBinding {
  file: string;
  line: number;
  mac: string;
  name: string;
}

export function normaliseMac(mac: string): string {
  return mac.trim().toLowerCase();
}

export function isMac(s: string): boolean {
  return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(s.trim());
}

/** 255.255.255.0 -> 24 */
export function netmaskToPrefix(mask: string): number | undefined {
  const parts = mask.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return undefined;
  const bits = parts.map((p) => p.toString(2).padStart(8, '0')).join('');
  return /^1*0*$/.test(bits) ? (bits.indexOf('0') === -1 ? 32 : bits.indexOf('0')) : undefined;
}
