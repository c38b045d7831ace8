/**
 * What names a block device beyond this host, so that two hosts can tell
 * whether they see the same one (a LUN of a SAN, a multipath map, an LV of
 * a shared VG, a loop device over a file on shared storage): the names its
 * kernel reads from the device itself, never its path, since two hosts'
 * /dev/sdb are unrelated.
 */
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { isSystemError } from '../util/errors.js';

export interface BlockIdentity {
  /** The device's own name: SCSI or NVMe WWID, device-mapper UUID, or serial; with ":partN" for a partition. */
  id?: string;
  /** A loop device's backing file, as its host sees it: the same device only if that file is the same (and `id`, its offset, too). */
  loopBackingFile?: string;
  sizeBytes: number;
}

/** The identity of the block device at `path`, or null when it is no block device. */
export async function blockIdentity(path: string, sysfs = '/sys'): Promise<BlockIdentity | null> {
  const st = await fs.stat(path).catch((e: unknown) => {
    if (isSystemError(e, 'ENOENT')) return undefined;
    throw e;
  });
  if (!st?.isBlockDevice()) return null;
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 0x100000) & 0xfff) << 8);
  return identityOfDevice(major, minor, sysfs);
}

/** The identity of device `major:minor` as sysfs (at `sysfs`) describes it. */
export async function identityOfDevice(major: number, minor: number, sysfs = '/sys'): Promise<BlockIdentity> {
  const dir = await fs.realpath(join(sysfs, 'dev', 'block', `${major}:${minor}`));
  const sizeBytes = Number(await _read(join(dir, 'size'))) * 512;
  const partition = await _read(join(dir, 'partition'));
  // A partition's names are its disk's, one directory up.
  const disk = partition ? join(dir, '..') : dir;
  const loopBackingFile = await _read(join(disk, 'loop', 'backing_file'));
  // Two loop devices over one file at different offsets (LVs of one PV) are different devices.
  if (loopBackingFile) return { sizeBytes, loopBackingFile, id: `loop-offset=${(await _read(join(disk, 'loop', 'offset'))) ?? '0'}${partition ? `:part${partition}` : ''}` };
  for (const file of ['dm/uuid', 'wwid', 'device/wwid', 'serial', 'device/serial']) {
    const name = await _read(join(disk, file));
    if (name) return { sizeBytes, id: `${file.replace(/^device\//, '')}=${name}${partition ? `:part${partition}` : ''}` };
  }
  return { sizeBytes };
}

/** A sysfs attribute's text, trimmed; undefined when the device has none. */
async function _read(path: string): Promise<string | undefined> {
  try {
    return (await fs.readFile(path, 'utf8')).trim() || undefined;
  } catch (e) {
    if (isSystemError(e, 'ENOENT') || isSystemError(e, 'ENOTDIR')) return undefined;
    throw e;
  }
}
