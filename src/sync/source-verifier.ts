/**
 * The source's half of the verification: compares the digests of the
 * blocks the destination read back from its disk (those written by this
 * run or a resumed one) with the source's own, and returns the byte ranges
 * that differ. Blocks a resume skipped have no source digest yet: they are
 * hashed meanwhile, while the destination reads back.
 */
import type { BlockGeometry } from './block-geometry.js';
import { readBlocks } from './block-reader.js';
import type { DigestTable } from './digest-table.js';
import type { SourceDisk } from './source-disk.js';
import type { ByteRange, SyncProgress } from './sync-progress.js';

export interface SourceVerifyOptions {
  source: SourceDisk;
  geometry: BlockGeometry;
  /** Per block, 1 when the allocation map says it may hold data. */
  dataBlocks: Uint8Array;
  /** The source's digests; those missing are filled in here. */
  sourceDigests: DigestTable;
  /** The destination's digests of what it read back. */
  readBackDigests: DigestTable;
  /** Whether block `index` was written (by this run or a resumed one), and so read back. */
  written(index: number): boolean;
  /** Resolves once the destination's read-back digest of block `index` is in. */
  arrived(index: number): Promise<void>;
  /** bytesVerified grows as blocks are compared. */
  progress: SyncProgress;
}

/** The ranges where the destination differs from the source; none when the copy is proven equal. */
export async function compareReadBack(options: SourceVerifyOptions): Promise<ByteRange[]> {
  const { geometry, sourceDigests, readBackDigests, progress } = options;
  const filling = hashMissing(options);
  filling.catch(() => undefined); // surfaced below
  const mismatches: ByteRange[] = [];
  for (let i = 0; i < geometry.count; i++) {
    if (!options.written(i)) continue;
    await options.arrived(i);
    if (!sourceDigests.has(i)) await Promise.race([sourceDigests.wait(i), filling.then(() => sourceDigests.wait(i))]);
    const length = geometry.lengthOf(i);
    if (!sourceDigests.same(i, readBackDigests)) addRange(mismatches, geometry.offsetOf(i), length);
    progress.bytesVerified += length;
  }
  await filling;
  return mismatches;
}

/** Hashes the source blocks that have no digest yet. */
async function hashMissing(options: SourceVerifyOptions): Promise<void> {
  const { source, geometry, dataBlocks, sourceDigests } = options;
  const { disk, pool, window } = source;
  const wanted = (i: number): boolean => !sourceDigests.has(i);
  for await (const block of readBlocks({ disk, pool, blockSize: geometry.blockSize, dataBlocks, from: 0, to: geometry.count, window, wanted })) {
    sourceDigests.set(block.index, block.zero ? undefined : block.digest);
    if (!block.zero) pool.release(block.slot);
  }
}

/** Appends a range, merged into the last one when adjacent. */
export function addRange(ranges: ByteRange[], start: number, length: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last.start + last.length === start) last.length += length;
  else ranges.push({ start, length });
}
