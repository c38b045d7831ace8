/**
 * LVM logical volumes as sync endpoints: recognising their paths and
 * creating one with a source's size. Activation needs device-mapper in the
 * kernel; where it is missing ferry says so rather than letting lvcreate fail
 * obscurely.
 */
import { existsSync, readFileSync } from 'node:fs';
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';

export interface LvName {
  vg: string;
  lv: string;
}

/** /dev/VG/LV or /dev/mapper/VG-LV (dashes in names doubled), else undefined. */
export function parseLvPath(path: string): LvName | undefined {
  const mapper = /^\/dev\/mapper\/((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(path);
  if (mapper) return { vg: mapper[1]!.replace(/--/g, '-'), lv: mapper[2]!.replace(/--/g, '-') };
  const direct = /^\/dev\/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)\/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)$/.exec(path);
  if (!direct) return undefined;
  // /dev/disk/by-id/..., /dev/pts/0 and friends are not volume groups.
  if (['disk', 'pts', 'mapper', 'shm', 'mqueue', 'hugepages', 'net', 'snd', 'input', 'bus', 'char', 'block', 'cpu', 'fd'].includes(direct[1]!)) return undefined;
  return { vg: direct[1]!, lv: direct[2]! };
}

/**
 * Whether the kernel has device-mapper. /dev/mapper/control can exist
 * without it (udev rules, lvm2 packaging), so ask the kernel: the driver
 * registers a misc device named "device-mapper".
 */
export function deviceMapperAvailable(): boolean {
  try {
    return existsSync('/dev/mapper/control') && /\bdevice-mapper\b/.test(readFileSync('/proc/misc', 'utf8'));
  } catch {
    return false;
  }
}

/** Creates LV `name.lv` in `vg` of at least `size` bytes and returns its path. */
export async function createLv(vg: string, name: string, size: number): Promise<string> {
  if (!deviceMapperAvailable()) {
    throw new FerryError('INCOMPATIBLE', `Cannot create logical volume "${vg}/${name}": this kernel has no device-mapper (not in /proc/misc), so LVM cannot activate volumes`, {
      hint: 'load the dm_mod kernel module (modprobe dm_mod) on the destination host, or sync to a file or an existing block device',
    });
  }
  const vgs = await run('vgs', ['--noheadings', '-o', 'vg_name', vg], { allowFailure: true });
  if (vgs.exitCode !== 0) {
    throw new FerryError('NOT_FOUND', `Cannot create logical volume "${vg}/${name}": volume group "${vg}" not found`, {
      hint: 'list volume groups with "vgs" and pass an existing one to --create-lv',
    });
  }
  const r = await run('lvcreate', ['-y', '-W', 'n', '-L', `${size}b`, '-n', name, vg], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot create logical volume "${vg}/${name}" of ${size} bytes: ${r.stderr.trim().split('\n').pop()}`, {
      hint: `check free space in volume group "${vg}" (vgs ${vg})`,
    });
  }
  return `/dev/${vg}/${name}`;
}
