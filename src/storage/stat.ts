/** What a path is on this host: missing, a file (with its allocation), a block device (with its size). */
import * as fs from 'node:fs/promises';
import { isSystemError } from '../util/errors.js';

export interface FileStat {
  exists: boolean;
  type?: 'file' | 'block' | 'directory' | 'other';
  /** Bytes: file length, or the device size for block devices. */
  size?: number;
  /** Bytes actually allocated on disk (sparse files). */
  allocated?: number;
  /** A file's permission bits (0o600: its owner's alone). */
  mode?: number;
}

export async function statPath(path: string): Promise<FileStat> {
  let st;
  try {
    st = await fs.stat(path);
  } catch (e) {
    if (isSystemError(e, 'ENOENT')) return { exists: false };
    throw e;
  }
  if (st.isBlockDevice()) {
    const fh = await fs.open(path, 'r');
    try {
      // The length of a block device is where seeking to its end lands.
      const { size } = await blockDeviceSize(fh);
      return { exists: true, type: 'block', size, allocated: size };
    } finally {
      await fh.close();
    }
  }
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
  return { exists: true, type, size: st.size, allocated: st.blocks * 512, ...(type === 'file' ? { mode: st.mode & 0o7777 } : {}) };
}

async function blockDeviceSize(fh: fs.FileHandle): Promise<{ size: number }> {
  // Node has no ioctl; read the size from sysfs through the device number.
  const st = await fh.stat();
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 0x100000) & 0xfff) << 8);
  const sectors = await fs.readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
  return { size: Number(sectors.trim()) * 512 };
}
