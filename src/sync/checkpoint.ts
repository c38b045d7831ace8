/**
 * The destination's resume point, in two marks:
 *
 * - `writtenBlocks`: every block below it was handed to the kernel by a
 *   completed write. That survives the agent being killed, the connection
 *   dropping or Ctrl-C, but not the host crashing, so it only counts on the
 *   same boot (`bootId`), and only for disks whose writes go straight to the
 *   kernel (raw files, block devices; not images behind a FUSE export, whose
 *   daemon caches metadata).
 * - `durableBlocks`: every block below it was fsync'ed; it counts after a
 *   reboot too.
 *
 * Keeping both lets a sync write at full speed and flush rarely (a flush
 * stalls the writes behind it), yet never resume past what the disk holds.
 * The file is replaced atomically (temp file, rename); when it records a
 * new durable mark it is fsync'ed with its directory first.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface Checkpoint {
  version: 2;
  destination: string;
  sourceId: string;
  size: number;
  blockSize: number;
  /** Blocks below this index are written (in the kernel's hands); valid on `bootId` only. */
  writtenBlocks: number;
  /** Blocks below this index are durable on the disk. */
  durableBlocks: number;
  bootId: string;
  updatedAt: string;
}

/** Where sync state (checkpoints, digest caches) lives on the destination host. */
export function stateDir(): string {
  return process.env.FERRY_SYNC_STATE_DIR ?? '/var/lib/ferry/sync';
}

/** The state file for a destination path with this suffix: one per destination. */
export function statePath(destination: string, suffix: string): string {
  const id = createHash('sha256').update(destination).digest('hex').slice(0, 16);
  return join(stateDir(), `${id}${suffix}`);
}

export function checkpointPath(destination: string): string {
  return statePath(destination, '.json');
}

let cachedBootId: string | undefined;
/** This boot of the host; changes when it restarts (and so does what survived in its page cache). */
export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

/** The first block a resumed sync must handle, given the checkpoint and the current boot. */
export function resumePoint(c: Checkpoint, currentBoot = bootId()): number {
  return c.bootId === currentBoot ? Math.max(c.writtenBlocks, c.durableBlocks) : c.durableBlocks;
}

export async function loadCheckpoint(destination: string): Promise<Checkpoint | undefined> {
  try {
    const c = JSON.parse(await fs.readFile(checkpointPath(destination), 'utf8')) as Checkpoint;
    return c.version === 2 && c.destination === destination ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Replaces the checkpoint; `durable` also makes the file itself survive a crash (use it when the durable mark moved). */
export async function saveCheckpoint(c: Checkpoint, durable: boolean): Promise<void> {
  const path = checkpointPath(c.destination);
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(c));
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path);
  if (!durable) return;
  const dir = await fs.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function removeCheckpoint(destination: string): Promise<void> {
  await fs.rm(checkpointPath(destination), { force: true });
}
