/**
 * The destination's durable resume point. Written only after the data it
 * covers has been fsync'ed, and atomically (temp file, fsync, rename, fsync
 * of the directory), so after a crash it never claims more than the disk holds.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface Checkpoint {
  version: 1;
  destination: string;
  sourceId: string;
  size: number;
  blockSize: number;
  /** Every block below this index is written and durable. */
  confirmedBlocks: number;
  updatedAt: string;
}

const STATE_DIR = process.env.FERRY_SYNC_STATE_DIR ?? '/var/lib/ferry/sync';

/** Where the checkpoint for a destination lives: one file per destination path. */
export function checkpointPath(destination: string): string {
  const id = createHash('sha256').update(destination).digest('hex').slice(0, 16);
  return join(STATE_DIR, `${id}.json`);
}

export async function loadCheckpoint(destination: string): Promise<Checkpoint | undefined> {
  try {
    const c = JSON.parse(await fs.readFile(checkpointPath(destination), 'utf8')) as Checkpoint;
    return c.version === 1 && c.destination === destination ? c : undefined;
  } catch {
    return undefined;
  }
}

export async function saveCheckpoint(c: Checkpoint): Promise<void> {
  const path = checkpointPath(c.destination);
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(c));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, path);
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
