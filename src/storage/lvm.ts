/**
 * LVM logical volumes as sync and migration endpoints: recognising their
 * paths, creating one with a source's size, activating it at /dev/VG/LV for
 * a VM (where the kernel has no device-mapper: a loop device over its
 * extents, linked there as udev would link the dm device), and removing one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir, open, readFile, readlink, realpath, rmdir, symlink, unlink } from 'node:fs/promises';
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
  // lvcreate zeroes a new LV's first 4 KiB (-Z y) only where it can activate it. Without device-mapper it is done
  // here, so that a signature left on the extents (an old qcow2 header, a filesystem) is not read as this LV's content.
  if (inactive.length) await zeroStart(await placeInactiveLv(vg, name));
  return `/dev/${vg}/${name}`;
}

async function zeroStart(place: LvExtents): Promise<void> {
  const file = await open(place.device, 'r+');
  try {
    await file.write(Buffer.alloc(Math.min(4096, place.size)), 0, Math.min(4096, place.size), place.offset);
    await file.sync();
  } finally {
    await file.close();
  }
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
  return mapExtents(vg, name, await placeInactiveLv(vg, name));
}

async function mapExtents(vg: string, name: string, place: LvExtents): Promise<MappedLv> {
  const loop = await run('losetup', ['--find', '--show', '--offset', String(place.offset), '--sizelimit', String(place.size), place.device], { allowFailure: true });
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

/** Where an LV's one run of extents lies: its PV's device, the offset there, its size. */
interface LvExtents {
  device: string;
  offset: number;
  size: number;
}

async function placeInactiveLv(vg: string, name: string): Promise<LvExtents> {
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
  return { device: place.pv.device, offset: place.offset, size: place.size };
}

/** Whether loop device `loop` is attached over exactly these extents (a link to it may outlive it: its number may be another's now). */
async function loopMapsExtents(loop: string, extents: LvExtents): Promise<boolean> {
  const m = /^\/dev\/(loop\d+)$/.exec(loop);
  if (!m) return false;
  const sys = (f: string): Promise<string> => readFile(`/sys/block/${m[1]}/loop/${f}`, 'utf8').then((t) => t.trim());
  try {
    const [backing, offset, sizelimit] = await Promise.all([sys('backing_file'), sys('offset'), sys('sizelimit')]);
    const [a, b] = await Promise.all([realpath(backing), realpath(extents.device)]);
    return a === b && Number(offset) === extents.offset && Number(sizelimit) === extents.size;
  } catch {
    return false; // not attached
  }
}

/** A logical volume as the LVM tools report it. */
export interface LvInfo extends LvName {
  sizeBytes: number;
}

/** The LV at `path` (/dev/VG/LV or /dev/mapper/VG-LV) if LVM knows it, active or not; a path that only looks like one is not. */
export async function describeLv(path: string): Promise<LvInfo | undefined> {
  const name = parseLvPath(path);
  if (!name) return undefined;
  const r = await run('lvs', ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_size', `${name.vg}/${name.lv}`], { allowFailure: true });
  const [lv, size] = r.stdout.trim().split(/\s+/);
  if (r.exitCode !== 0 || lv !== name.lv) return undefined;
  return { ...name, sizeBytes: Number(size) };
}

/** Free bytes in volume group `vg`, or undefined when this host has no such VG. */
export async function volumeGroupFree(vg: string): Promise<number | undefined> {
  const r = await run('vgs', ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'vg_name,vg_free', vg], { allowFailure: true });
  const [name, free] = r.stdout.trim().split(/\s+/);
  return r.exitCode === 0 && name === vg ? Number(free) : undefined;
}

/** Names of this host's volume groups. */
export async function volumeGroupNames(): Promise<string[]> {
  const r = await run('vgs', ['--noheadings', '-o', 'vg_name'], { allowFailure: true });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * Makes `/dev/VG/LV` the LV's device for a VM to open. With device-mapper,
 * `lvchange -ay`; without it, a loop device over the LV's extents, with the
 * symlink udev would have made for the dm device, so that a VM's command
 * line or domain XML names /dev/VG/LV either way. Already active: kept.
 */
export async function activateLv(vg: string, name: string): Promise<string> {
  const path = `/dev/${vg}/${name}`;
  if (deviceMapperAvailable()) {
    const r = await run('lvchange', ['-ay', `${vg}/${name}`], { allowFailure: true });
    if (r.exitCode !== 0) {
      throw new FerryError('COMMAND_FAILED', `Cannot activate logical volume "${vg}/${name}": ${r.stderr.trim().split('\n').pop()}`, { hint: `check it with "lvs ${vg}/${name}"` });
    }
    return path;
  }
  const extents = await placeInactiveLv(vg, name);
  const link = await lstat(path).catch(() => undefined);
  if (link?.isSymbolicLink()) {
    if (await loopMapsExtents(await readlink(path), extents)) return path;
    await unlink(path); // stale: its loop device was detached since
  } else if (link) {
    throw new FerryError('TARGET_EXISTS', `Cannot activate logical volume "${vg}/${name}": "${path}" exists and is not ferry's link to it`, { hint: `remove ${path}` });
  }
  const mapped = await mapExtents(vg, name, extents);
  try {
    await mkdir(`/dev/${vg}`, { recursive: true });
    await symlink(mapped.device, path);
  } catch (e) {
    await mapped.release();
    throw new FerryError('COMMAND_FAILED', `Cannot link "${path}" to ${mapped.device}: ${(e as Error).message}`, { hint: `remove whatever is at ${path}`, cause: e });
  }
  return path;
}

/** Undoes activateLv: `lvchange -an`, or (no device-mapper) the symlink and the loop device it names go. */
export async function deactivateLv(vg: string, name: string): Promise<void> {
  const path = `/dev/${vg}/${name}`;
  if (deviceMapperAvailable()) {
    await run('lvchange', ['-an', `${vg}/${name}`], { allowFailure: true });
    return;
  }
  const link = await lstat(path).catch(() => undefined);
  if (!link?.isSymbolicLink()) return;
  const device = await readlink(path);
  const extents = await placeInactiveLv(vg, name).catch(() => undefined);
  await unlink(path);
  // Only the loop device over this LV's extents: a stale link may name a loop device that is another's now.
  if (extents && (await loopMapsExtents(device, extents))) await run('losetup', ['-d', device], { allowFailure: true });
  // Left behind empty, as udev would remove it; a mount point (the lab's private /dev/VG) stays.
  await rmdir(`/dev/${vg}`).catch(() => undefined);
}

/** Deactivates and removes LV `name` of `vg`; one that is not there is already removed. */
export async function removeLv(vg: string, name: string): Promise<void> {
  await deactivateLv(vg, name);
  if (!(await lvExists(vg, name))) return;
  const inactive = deviceMapperAvailable() ? [] : ['--driverloaded', 'n'];
  const r = await run('lvremove', ['-y', ...inactive, `${vg}/${name}`], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot remove logical volume "${vg}/${name}": ${r.stderr.trim().split('\n').pop()}`, { hint: `remove it by hand: lvremove ${vg}/${name}` });
  }
}
