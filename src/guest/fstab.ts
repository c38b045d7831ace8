/** /etc/fstab: what it mounts and how it names each device. */
import { classifyDeviceName, type DeviceName, type TargetNaming } from './device-names.js';
import { unescapeOctal } from '../util/octal-escapes.js';
import { parseTable, replaceField } from './table-file.js';

export interface FstabEntry {
  line: number;
  spec: string;
  mountPoint: string;
  type: string;
  options: string[];
  dump: number;
  pass: number;
  device: DeviceName;
}

export function parseFstab(text: string, target?: TargetNaming): FstabEntry[] {
  return parseTable(text)
    .filter((r) => r.fields.length >= 2)
    .map((r) => {
      const [spec, mountPoint, type = 'auto', options = 'defaults', dump = '0', pass = '0'] = r.fields as [string, string, ...string[]];
      return {
        line: r.line,
        spec,
        mountPoint: unescapeOctal(mountPoint),
        type,
        options: options.split(','),
        dump: Number(dump) || 0,
        pass: Number(pass) || 0,
        device: classifyDeviceName(spec, target),
      };
    });
}

/** Rewrites the device field of the entries `rename` returns a new name for. */
export function rewriteFstabDevices(text: string, rename: (entry: FstabEntry) => string | undefined): string {
  let out = text;
  for (const e of parseFstab(text)) {
    const to = rename(e);
    if (to !== undefined && to !== e.spec) out = replaceField(out, e.line, 0, to);
  }
  return out;
}

/** True for entries that are block devices the guest needs to boot (not noauto, not network, not pseudo). */
export function isLocalBlockEntry(e: FstabEntry): boolean {
  return !['pseudo', 'network'].includes(e.device.kind) && !['nfs', 'nfs4', 'cifs', 'tmpfs', 'proc', 'sysfs', 'devpts'].includes(e.type);
}
