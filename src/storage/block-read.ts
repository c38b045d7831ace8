/**
 * Positional reads of one block, synchronous, for threads that do nothing
 * else (the sync engine's hashing threads). Works with a direct descriptor
 * for the aligned part of the block (see aligned-memory.ts).
 */
import { readSync } from 'node:fs';
import { DIRECT_ALIGNMENT } from './aligned-memory.js';

/** Where a block is read from: `fd` (direct I/O when it differs from `tailFd`), the unaligned rest from `tailFd`. */
export interface BlockSource {
  fd: number;
  tailFd: number;
}

/**
 * Reads `view.length` bytes at `position`; past the end of a short file the
 * guest sees zeros. A direct descriptor reads the 4 KiB-aligned part.
 */
export function readBlockSync(src: BlockSource, view: Uint8Array, position: number): void {
  const length = view.length;
  let aligned = src.fd === src.tailFd ? length : length - (length % DIRECT_ALIGNMENT);
  let done = 0;
  while (done < length) {
    const direct = done < aligned;
    const want = (direct ? aligned : length) - done;
    const n = readSync(direct ? src.fd : src.tailFd, view, done, want, position + done);
    if (n === 0) break;
    done += n;
    if (direct && n < want) aligned = done; // end of file: the rest, if any, through the cache
  }
  if (done < length) view.fill(0, done, length);
}
