/**
 * The source's blocks from the resume point on, in order, as the send loop
 * takes them. Those a head-start scan hashed are decided from their
 * digests: equal ones without their bytes, the few that must cross read
 * again right here. If too many must cross, or the scan stopped short, the
 * rest is read as usual from where it stopped, which reads each block once.
 */
import { readBlockSync } from '../storage/block-read.js';
import { trace } from '../util/trace.js';
import type { BlockGeometry } from './block-geometry.js';
import { readBlocks, type BlockState } from './block-reader.js';
import type { DigestTable } from './digest-table.js';
import { blockDigest } from './examine-block.js';
import type { SourceDisk } from './source-disk.js';
import type { SourceScan } from './source-scan.js';

/** A block as the sender meets it; a data block decided from its digest alone (equal on both sides) has no bytes. */
export type SourceBlock = BlockState | { index: number; zero: false; length: number; digest: Buffer; slot?: undefined };

/**
 * Blocks found changed in a head-start scan are read again one by one: past
 * this many, and past one block in 16, the scan is given up for the usual
 * reading.
 */
const SCAN_CHANGE_BUDGET = 64;

export interface SourceBlocksOptions {
  source: SourceDisk;
  geometry: BlockGeometry;
  /** Per block, 1 when the allocation map says it may hold data. */
  dataBlocks: Uint8Array;
  /** First block to yield. */
  startBlock: number;
  /** A head-start scan of the source, taken over from here. */
  scan?: SourceScan;
  /** The destination's digests, and a wait for one to arrive. */
  destinationDigests: DigestTable;
  arrived(index: number): Promise<void>;
  /** Whether a data block read from the disk needs its digest. */
  needsDigest: (index: number) => boolean;
}

/** The blocks from `startBlock` on, in order. The consumer releases each slot it is given. */
export async function* sourceBlocks(options: SourceBlocksOptions): AsyncGenerator<SourceBlock> {
  const { source, geometry, dataBlocks, needsDigest } = options;
  const from = options.scan ? yield* scannedBlocks(options, options.scan) : options.startBlock;
  const { disk, pool, window } = source;
  yield* readBlocks({ disk, pool, blockSize: geometry.blockSize, dataBlocks, from, to: geometry.count, window, needsDigest });
}

/** Blocks decided from the scan's digests; returns the first block it did not decide. */
async function* scannedBlocks(options: SourceBlocksOptions, scan: SourceScan): AsyncGenerator<SourceBlock, number> {
  const { geometry, startBlock, destinationDigests } = options;
  let changed = 0;
  let from = startBlock;
  for (; from < geometry.count; from++) {
    const index = from;
    if (!(await scan.reached(index))) break; // the scan stopped short (a read failed)
    await options.arrived(index);
    const length = geometry.lengthOf(index);
    if (scan.digests.isZero(index)) {
      yield { index, zero: true, length };
      continue;
    }
    const digest = Buffer.from(scan.digests.digest(index));
    if (!destinationDigests.isZero(index) && destinationDigests.digest(index).equals(digest)) {
      yield { index, zero: false, length, digest };
      continue;
    }
    if (++changed > Math.max(SCAN_CHANGE_BUDGET, (index - startBlock) / 16)) {
      await scan.stop();
      break;
    }
    // Read again right here: a thread would take it only after the scan's chunks queued before it.
    yield await readAgain(options.source, geometry, index);
  }
  trace(`send: scanned blocks decided up to ${from}`);
  return from;
}

/** Reads and hashes one block on this thread, into a slot of the pool. */
async function readAgain(source: SourceDisk, geometry: BlockGeometry, index: number): Promise<SourceBlock> {
  const { disk, pool } = source;
  const length = geometry.lengthOf(index);
  const slot = await pool.acquire();
  try {
    const view = slot.buf.subarray(0, length);
    readBlockSync(disk.blockSource(), view, geometry.offsetOf(index));
    const digest = blockDigest(view);
    if (!digest) pool.release(slot);
    return digest ? { index, zero: false, length, digest, slot } : { index, zero: true, length };
  } catch (e) {
    pool.release(slot);
    throw e;
  }
}
