/**
 * Who is using a disk right now: a mounted filesystem (directly, or through a
 * loop device backed by the file) or a process holding it open, QEMU in
 * particular. Writing under either corrupts it; reading under a running VM
 * gives a crash-consistent copy only.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { runningCommandPids } from '../util/exec.js';
import { unescapeOctal } from '../util/octal-escapes.js';

export interface DiskUsers {
  /** Mount points whose filesystem lives on the disk. */
  mounts: string[];
  /** Loop devices backed by the file. */
  loops: string[];
  /** Processes with the disk open (pid, command name); excludes this process. */
  openers: Array<{ pid: number; command: string }>;
}

/** True when some opener looks like a virtual machine (QEMU). */
export function hasRunningVm(users: DiskUsers): boolean {
  return users.openers.some((o) => /qemu-system|qemu-kvm|^kvm$/.test(o.command));
}

export function isBusy(users: DiskUsers): boolean {
  return users.mounts.length > 0 || users.loops.length > 0 || users.openers.length > 0;
}

export function describeUsers(users: DiskUsers): string {
  const parts: string[] = [];
  if (users.mounts.length) parts.push(`mounted at ${users.mounts.join(', ')}`);
  if (users.loops.length) parts.push(`attached to ${users.loops.join(', ')}`);
  if (users.openers.length) parts.push(`open in ${users.openers.map((o) => `${o.command} (pid ${o.pid})`).join(', ')}`);
  return parts.join('; ');
}

/** Finds the users of `path`; `ignorePids` are this agent's own helpers. */
export async function findDiskUsers(path: string, ignorePids: number[] = []): Promise<DiskUsers> {
  const real = await fs.realpath(path);
  const st = await fs.stat(real);
  const users: DiskUsers = { mounts: [], loops: [], openers: [] };
  const devNumbers = new Set<string>();
  if (st.isBlockDevice()) {
    devNumbers.add(devString(st.rdev));
    for (const p of await partitionsOf(st.rdev)) devNumbers.add(p);
  } else {
    for (const loop of await loopsBackedBy(real)) {
      users.loops.push(loop.device);
      devNumbers.add(loop.majmin);
      for (const p of await partitionsOf(loop.rdev)) devNumbers.add(p);
    }
  }
  const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    const sep = fields.indexOf('-');
    const source = sep > 0 ? unescapeOctal(fields[sep + 2] ?? '') : '';
    if (devNumbers.has(fields[2]!) || source === real) users.mounts.push(unescapeOctal(fields[4]!));
  }
  users.openers = await processesHolding(real, ignorePids);
  return users;
}

function devString(rdev: number): string {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 0x100000) & 0xfff) << 8);
  return `${major}:${minor}`;
}

async function partitionsOf(rdev: number): Promise<string[]> {
  const out: string[] = [];
  try {
    const base = await fs.realpath(`/sys/dev/block/${devString(rdev)}`);
    for (const name of await fs.readdir(base)) {
      const dev = await fs.readFile(`${base}/${name}/dev`, 'utf8').catch(() => '');
      if (dev && (await fs.stat(`${base}/${name}/partition`).catch(() => undefined))) out.push(dev.trim());
    }
  } catch {
    // not a whole disk (or sysfs absent): no partitions
  }
  return out;
}

async function loopsBackedBy(real: string): Promise<Array<{ device: string; majmin: string; rdev: number }>> {
  const out: Array<{ device: string; majmin: string; rdev: number }> = [];
  let names: string[];
  try {
    names = (await fs.readdir('/sys/block')).filter((n) => n.startsWith('loop'));
  } catch {
    return out;
  }
  for (const n of names) {
    const backing = await fs.readFile(`/sys/block/${n}/loop/backing_file`, 'utf8').catch(() => '');
    if (backing.trim() !== real) continue;
    const majmin = (await fs.readFile(`/sys/block/${n}/dev`, 'utf8')).trim();
    const [ma, mi] = majmin.split(':').map(Number) as [number, number];
    out.push({ device: `/dev/${n}`, majmin, rdev: ma * 256 + (mi & 0xff) + (mi >> 8) * 0x100000 });
  }
  return out;
}

/**
 * Processes with `path` open, from the /proc/PID/fd links; not this one, nor
 * the commands it is running right now (its own probes of the disk), nor
 * `ignorePids`.
 *
 * The links are read with synchronous calls, a few dozen processes at a
 * time between turns of the event loop: a promise per descriptor costs far
 * more than the read it waits for, and a host has thousands of them.
 */
export async function processesHolding(path: string, ignorePids: number[] = []): Promise<Array<{ pid: number; command: string }>> {
  const real = await fs.realpath(path).catch(() => path);
  const ignore = new Set([process.pid, ...ignorePids]);
  // Looked up when a holder is found, not before the scan: a probe started
  // meanwhile is registered before it can open anything.
  const ours = runningCommandPids();
  const out: Array<{ pid: number; command: string }> = [];
  const pids = readdirSync('/proc')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && !ignore.has(pid));
  for (let n = 0; n < pids.length; n++) {
    if (n % 32 === 31) await new Promise((r) => setImmediate(r));
    const pid = pids[n]!;
    if (holds(pid, real) && !ours.has(pid)) {
      // argv[0], not comm: comm is cut at 15 characters ("qemu-system-x86").
      const argv0 = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0] ?? '';
      const command = argv0.split('/').pop() || (await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
      out.push({ pid, command });
    }
  }
  return out;
}

/** Whether process `pid` has `real` open (false when it is gone or not ours to look at). */
function holds(pid: number, real: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === real) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}
