/** PIDs across the lab's PID namespaces: a daemon inside a lab host writes the PID it sees there, not the one the machine sees. */
import * as fs from 'node:fs/promises';
import { FerryError } from '../util/errors.js';

/** The PID, as this process sees it, of the process that has PID `nsPid` in the PID namespace of process `initPid`. */
export async function hostPidOf(initPid: number, nsPid: number): Promise<number> {
  const ns = await fs.readlink(`/proc/${initPid}/ns/pid`);
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // NSpid lists the process's PID in each namespace from ours down to its own.
      const ids = /^NSpid:\s+(.*)$/m
        .exec(await fs.readFile(`/proc/${entry}/status`, 'utf8'))?.[1]
        ?.trim()
        .split(/\s+/)
        .map(Number);
      if (ids && ids[ids.length - 1] === nsPid && (await fs.readlink(`/proc/${entry}/ns/pid`)) === ns) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  throw new FerryError('LAB', `Cannot find process ${nsPid} of the PID namespace of process ${initPid}`, { hint: 'run "ferry lab down" and "ferry lab up"' });
}
