/**
 * LVM logical volumes as sync endpoints: recognising their paths, creating
 * one with a source's size, and reaching one where the kernel has no
 * device-mapper to activate it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { placeLogicalVolume, readVolumeGroups } from './lvm-layout.js';

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

/** Whether `vg` has a logical volume `name`, active or not. */
export async function lvExists(vg: string, name: string): Promise<boolean> {
  const r = await run('lvs', ['--noheadings', '-o', 'lv_name', `${vg}/${name}`], { allowFailure: true });
  return r.exitCode === 0 && r.stdout.trim() === name;
}

/**
 * Creates LV `name` in `vg` of at least `size` bytes and returns its path.
 * Without device-mapper the LV cannot be activated: only its metadata is
 * written, and its extents are reached with `mapInactiveLv`.
 */
export async function createLv(vg: string, name: string, size: number): Promise<string> {
  const vgs = await run('vgs', ['--noheadings', '-o', 'vg_name', vg], { allowFailure: true });
  if (vgs.exitCode !== 0) {
    throw new FerryError('NOT_FOUND', `Cannot create logical volume "${vg}/${name}": volume group "${vg}" not found`, {
      hint: 'list volume groups with "vgs" and pass an existing one to --create-lv',
    });
  }
  const inactive = deviceMapperAvailable() ? [] : ['--driverloaded', 'n', '--activate', 'n', '--zero', 'n'];
  const r = await run('lvcreate', ['-y', '-W', 'n', ...inactive, '-L', `${size}b`, '-n', name, vg], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot create logical volume "${vg}/${name}" of ${size} bytes: ${r.stderr.trim().split('\n').pop()}`, {
      hint: `check free space in volume group "${vg}" (vgs ${vg})`,
    });
  }
  return `/dev/${vg}/${name}`;
}

/** A logical volume reached without device-mapper; `release` detaches it. */
export interface MappedLv {
  device: string;
  size: number;
  release(): Promise<void>;
}

/**
 * Reaches an LV on a host without device-mapper: a loop device over its one
 * linear run of extents on its physical volume (see lvm-layout.ts). LVs in
 * several pieces (extended, striped, thin) need device-mapper.
 */
export async function mapInactiveLv(vg: string, name: string): Promise<MappedLv> {
  const pvs = await run('pvs', ['--noheadings', '-o', 'pv_name', '--select', `vg_name=${vg}`], { allowFailure: true });
  const devices = pvs.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const group = (await readVolumeGroups(devices)).find((g) => g.name === vg);
  const lv = group?.lvs.find((l) => l.name === name);
  if (!group || !lv) {
    throw new FerryError('NOT_FOUND', `Cannot find logical volume "${vg}/${name}"`, { hint: `list the volume group's LVs with "lvs ${vg}", or pass --create-lv ${vg}` });
  }
  const place = placeLogicalVolume(group, lv);
  if (!place.ok) {
    throw new FerryError('INCOMPATIBLE', `Cannot reach logical volume "${vg}/${name}" on a kernel without device-mapper: ${place.reason}`, {
      hint: 'load the dm_mod kernel module (modprobe dm_mod) on this host, or sync to a file or another device',
    });
  }
  const loop = await run('losetup', ['--find', '--show', '--offset', String(place.offset), '--sizelimit', String(place.size), place.pv.device], { allowFailure: true });
  if (loop.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot map logical volume "${vg}/${name}" with a loop device: ${loop.stderr.trim().split('\n').pop()}`, {
      hint: 'check that loop devices are available (losetup --find)',
    });
  }
  const device = loop.stdout.trim();
  return {
    device,
    size: place.size,
    release: async () => {
      await run('losetup', ['-d', device], { allowFailure: true });
    },
  };
}
