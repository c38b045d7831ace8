/** udev persistent-net rules (70-persistent-net.rules): MAC -> interface name. */
import { normaliseMac, type NameBinding } from './network-config.js';

export function parseNetNameRules(file: string, text: string): NameBinding[] {
  const out: NameBinding[] = [];
  text.split('\n').forEach((raw, line) => {
    if (raw.trim().startsWith('#')) return;
    const mac = /ATTRS?\{address\}=="([^"]+)"/.exec(raw)?.[1];
    const name = /\bNAME:?="([^"]+)"/.exec(raw)?.[1];
    if (mac && name) out.push({ file, line, mac: normaliseMac(mac), name });
  });
  return out;
}

/** Rewrites the MAC of each rule `replace` returns a new one for; null comments the rule out. */
export function rewriteNetNameRules(text: string, replace: (binding: NameBinding) => string | null | undefined): string {
  const lines = text.split('\n');
  for (const b of parseNetNameRules('', text)) {
    const r = replace(b);
    if (r === undefined) continue;
    lines[b.line] = r === null ? `# disabled by ferry (MAC changed): ${lines[b.line]}` : lines[b.line]!.replace(/(ATTRS?\{address\}==")[^"]+(")/, `$1${r}$2`);
  }
  return lines.join('\n');
}
