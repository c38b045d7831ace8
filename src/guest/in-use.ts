/**
 * Finds processes holding a disk image open (a running QEMU), by reading the
 * /proc/PID/fd links, so ferry never edits a disk under a running guest.
 */
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';

export interface ImageHolder {
  pid: number;
  command: string;
}

export async function findImageHolders(path: string): Promise<ImageHolder[]> {
  const target = await realpath(path);
  const holders: ImageHolder[] = [];
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (link === target) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        holders.push({ pid: Number(pid), command: cmdline.split('\0').filter(Boolean).join(' ') });
        break;
      }
    }
  }
  return holders;
}
