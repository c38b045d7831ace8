/** /etc/crypttab: encrypted devices, the second field names the backing device. */
import { classifyDeviceName, type DeviceName, type TargetNaming } from './device-names.js';
import { parseTable, replaceField } from './table-file.js';

export interface CrypttabEntry {
  line: number;
  name: string;
  source: string;
  keyFile: string;
  options: string[];
  device: DeviceName;
}

export function parseCrypttab(text: string, target?: TargetNaming): CrypttabEntry[] {
  return parseTable(text)
    .filter((r) => r.fields.length >= 2)
    .map((r) => {
      const [name, source, keyFile = 'none', options = ''] = r.fields as [string, string, ...string[]];
      return { line: r.line, name, source, keyFile, options: options ? options.split(',') : [], device: classifyDeviceName(source, target) };
    });
}

export function rewriteCrypttabDevices(text: string, rename: (entry: CrypttabEntry) => string | undefined): string {
  let out = text;
  for (const e of parseCrypttab(text)) {
    const to = rename(e);
    if (to !== undefined && to !== e.source) out = replaceField(out, e.line, 1, to);
  }
  return out;
}
