/**
 * What a destination file holds, remembered between syncs. After a sync the
 * destination agent records every block's digest together with the file's
 * identity (device, inode, size, and mtime and ctime in nanoseconds). The
 * next sync into the same file streams these instead of reading and hashing
 * the whole destination again, as long as nothing touched the file since:
 * any write moves its mtime and ctime. This is what makes the final pass of
 * a warm migration, or a nightly re-sync, cost one read of the source only.
 *
 * Regular files only: writing a block device does not touch its node's
 * times. The record is dropped before a sync writes anything, so a sync
 * that dies half-way leaves none behind; `--rehash` ignores it.
 */
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';
import { statePath } from './checkpoint.js';
import { DigestTable } from './digest-table.js';

interface Header {
  version: 1;
  destination: string;
  blockSize: number;
  count: number;
  identity: FileIdentity;
}

export interface FileIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/**
 * File times tick at the kernel's coarse clock: a write in the same tick as
 * the last one recorded would leave them unchanged. So a record is only
 * made once the file's times are more than a tick in the past. Linux ticks
 * at least 100 times a second (CONFIG_HZ 100 to 1000).
 */
const SETTLE_NS = 20_000_000n;

export function digestCachePath(destination: string): string {
  return statePath(destination, '.digests');
}

export async function fileIdentity(path: string): Promise<FileIdentity | undefined> {
  const st = await fs.stat(path, { bigint: true }).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return { dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

const sameIdentity = (a: FileIdentity, b: FileIdentity): boolean => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;

/** The remembered digests of `destination`, when they still describe it. */
export async function loadDigestCache(destination: string, blockSize: number, count: number): Promise<DigestTable | undefined> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(digestCachePath(destination));
  } catch {
    return undefined;
  }
  const nl = bytes.indexOf(10);
  if (nl < 0) return undefined;
  let header: Header;
  try {
    header = JSON.parse(bytes.subarray(0, nl).toString()) as Header;
  } catch {
    return undefined;
  }
  if (header.version !== 1 || header.destination !== destination || header.blockSize !== blockSize || header.count !== count) return undefined;
  const now = await fileIdentity(destination);
  if (!now || !sameIdentity(now, header.identity)) return undefined;
  return DigestTable.fromBytes(count, bytes.subarray(nl + 1));
}

/** Records the digests of `destination` as it is now (call after its last write and flush). */
export async function saveDigestCache(destination: string, blockSize: number, table: DigestTable): Promise<void> {
  let identity = await fileIdentity(destination);
  if (!identity) return;
  const age = BigInt(Date.now()) * 1_000_000n - BigInt(identity.mtimeNs);
  if (age < SETTLE_NS) {
    await new Promise((r) => setTimeout(r, Number((SETTLE_NS - age) / 1_000_000n) + 1));
    identity = await fileIdentity(destination);
    if (!identity) return;
  }
  const header: Header = { version: 1, destination, blockSize, count: table.count, identity };
  const path = digestCachePath(destination);
  await fs.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await fs.writeFile(tmp, Buffer.concat([Buffer.from(JSON.stringify(header) + '\n'), table.toBytes()]));
  await fs.rename(tmp, path);
}

export async function dropDigestCache(destination: string): Promise<void> {
  await fs.rm(digestCachePath(destination), { force: true });
}
