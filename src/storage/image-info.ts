/**
 * What a path on this host holds, as a disk: a regular file or block device,
 * its image format as qemu-img sees it, and its guest-visible size.
 */
import * as fs from 'node:fs/promises';
import { FerryError, messageOf } from '../util/errors.js';
import { run } from '../util/exec.js';
import { statPath } from './stat.js';
import { parseLvPath, type LvName } from './lvm.js';

export type DiskKind = 'file' | 'block';

export interface DiskInfo {
  path: string;
  exists: boolean;
  kind?: DiskKind;
  /** qemu-img's name for the format: raw, qcow2, vmdk... */
  format?: string;
  /** Guest-visible size in bytes. */
  size?: number;
  /** Identity of the underlying file, to tell two names for one disk apart. */
  dev?: number;
  ino?: number;
  /** Set when the path names an LVM logical volume (/dev/VG/LV, /dev/mapper/VG-LV). */
  lv?: LvName;
  /** Backing file of an image with a backing chain (qcow2 overlays). */
  backingFile?: string;
}

/** Inspects a disk path; a missing path yields `{ exists: false }`, not an error. */
export async function inspectDisk(path: string): Promise<DiskInfo> {
  const seen = await statDisk(path);
  if (!seen.exists || seen.kind === 'block') return seen;
  const probe = await run('qemu-img', ['info', '-U', '--output=json', path], { allowFailure: true });
  if (probe.exitCode !== 0) {
    throw new FerryError('BAD_FORMAT', `Cannot read image "${path}": ${probe.stderr.trim().split('\n').pop()}`, {
      hint: 'check that the file is a disk image qemu-img can open (qemu-img info FILE)',
    });
  }
  const info = JSON.parse(probe.stdout) as { format: string; 'virtual-size': number; 'backing-filename'?: string; 'full-backing-filename'?: string };
  return {
    ...seen,
    format: info.format,
    // A raw file holds exactly its bytes (qemu-img rounds its size up to 512).
    size: info.format === 'raw' && !info['backing-filename'] ? seen.size : info['virtual-size'],
    backingFile: info['full-backing-filename'] ?? info['backing-filename'],
  };
}

/**
 * What `stat` alone tells of a disk, without starting qemu-img: everything
 * for a block device; for a regular file all but its format, which is
 * taken to be raw (the common case) until `inspectDisk` says. Lets work
 * that would only wait for the probe begin while it runs.
 */
export async function statDisk(path: string): Promise<DiskInfo> {
  const lv = parseLvPath(path);
  const st = await statPath(path);
  if (!st.exists) return { path, exists: false, lv };
  if (st.type !== 'file' && st.type !== 'block') {
    throw new FerryError('BAD_FORMAT', `Cannot use "${path}" as a disk: it is a ${st.type}`, {
      hint: 'name a regular file, an image (qcow2...), a block device or a logical volume',
    });
  }
  const ids = await fs.stat(path);
  return { path, exists: true, kind: st.type, format: 'raw', size: st.size, dev: ids.dev, ino: ids.ino, lv };
}

/** Whether two inspections name one disk with the same content layout (same file, size, format and backing). */
export function sameDisk(a: DiskInfo, b: DiskInfo): boolean {
  return a.path === b.path && a.exists === b.exists && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.format === b.format && a.backingFile === b.backingFile;
}

export interface ImageInfo {
  filename: string;
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFilename?: string;
  backingFormat?: string;
}

/** The image and its backing chain, top first. `-U` reads images a running VM holds. */
export async function imageChain(path: string): Promise<ImageInfo[]> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', '--backing-chain', path], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('NOT_FOUND', `Cannot read image "${path}": ${r.stderr.trim().split('\n').pop()}`);
  }
  const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  return list.map((i) => ({
    filename: String(i.filename),
    format: String(i.format),
    virtualSize: Number(i['virtual-size']),
    actualSize: i['actual-size'] === undefined ? undefined : Number(i['actual-size']),
    backingFilename: (i['full-backing-filename'] ?? i['backing-filename']) as string | undefined,
    backingFormat: i['backing-filename-format'] as string | undefined,
  }));
}

export interface CreateImage {
  path: string;
  format: string;
  sizeBytes: number;
  /** Backing file of a new overlay (qcow2), and its format. */
  backingFile?: string;
  backingFormat?: string;
  /** A raw file's permission bits (as the source's, for a file only its owner may read); else the umask's. */
  mode?: number;
}

/** Creates an empty (sparse) image of the given format and guest size, optionally over a backing file. */
export async function createImage(spec: CreateImage): Promise<void> {
  if (spec.format === 'raw' && !spec.backingFile) {
    // Exactly the size asked for (qemu-img rounds raw files up to 512 bytes),
    // sparse, and never over an existing file.
    try {
      const fh = await fs.open(spec.path, 'wx', spec.mode);
      try {
        await fh.truncate(spec.sizeBytes);
      } finally {
        await fh.close();
      }
      return;
    } catch (e) {
      throw new FerryError('COMMAND_FAILED', `Cannot create image "${spec.path}" (raw, ${spec.sizeBytes} bytes): ${messageOf(e)}`, {
        hint: 'check that the directory exists and is writable and has free space, and that the file does not exist yet',
      });
    }
  }
  const args = ['create', '-q', '-f', spec.format];
  if (spec.format === 'qcow2') args.push('-o', 'preallocation=off');
  if (spec.backingFile) args.push('-b', spec.backingFile, '-F', spec.backingFormat ?? 'raw');
  const r = await run('qemu-img', [...args, spec.path, String(spec.sizeBytes)], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot create image "${spec.path}" (${spec.format}, ${spec.sizeBytes} bytes): ${r.stderr.trim().split('\n').pop()}`, {
      hint: 'check that the directory exists and is writable and has free space',
    });
  }
}

const FORMAT_BY_EXTENSION: Record<string, string> = { raw: 'raw', img: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vdi: 'vdi', vhdx: 'vhdx' };

/**
 * The format to create a missing image in: the one asked for, else the one
 * the file name says (disk.img is raw, disk.qcow2 qcow2), else the source's.
 */
export function formatForNewImage(path: string, sourceFormat: string, requested?: string): string {
  if (requested) return requested;
  const ext = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return (ext && FORMAT_BY_EXTENSION[ext]) ?? sourceFormat;
}
