/**
 * What one block holds: read into its slot, checked for zeros (a zero block
 * costs nothing on the wire), hashed otherwise. Runs on the pool's threads,
 * or on the calling thread for a pool without threads.
 */
import { readBlockSync, type BlockSource } from '../storage/block-read.js';
import { isAllZero } from '../storage/zeros.js';
import { xxh128 } from './xxh128.js';

/** The digest of a block in memory, undefined when it is all zeros (zero blocks have none). */
export function blockDigest(view: Uint8Array): Buffer | undefined {
  return isAllZero(view) ? undefined : xxh128(view);
}

/** Reads the block at `position` into `view`; a digest unless it is all zeros or `digest` is false. */
export function examineBlock(src: BlockSource, view: Uint8Array, position: number, digest: boolean): { zero: boolean; digest?: Uint8Array } {
  readBlockSync(src, view, position);
  if (isAllZero(view)) return { zero: true };
  return { zero: false, digest: digest ? xxh128(view) : undefined };
}
