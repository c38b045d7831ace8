/**
 * Positional reads of one block: synchronous for threads that do nothing
 * else (the sync engine's hashing threads), asynchronous (on libuv's pool)
 * for the main thread. Works with a direct descriptor for the aligned part
 * of the block (see aligned-memory.ts).
 */
import { read, readSync } from 'node:fs';
import { DIRECT_ALIGNMENT } from './aligned-memory.js';

/** Where a block is read from: `fd` (direct I/O when it differs from `tailFd`), the unaligned rest from `tailFd`. */
export interface BlockSource {
  fd: number;
  tailFd: number;
}

interface ReadStep {
  fd: number;
  offset: number;
  length: number;
}

/**
 * The reads that fill a block of `length` bytes, each told how many bytes
 * the previous one got: a direct descriptor reads the 4 KiB-aligned part,
 * the cached one the rest; a short read means the end of the file.
 * Returns how many bytes were read.
 */
function* readSteps(src: BlockSource, length: number): Generator<ReadStep, number, number> {
  let aligned = src.fd === src.tailFd ? length : length - (length % DIRECT_ALIGNMENT);
  let done = 0;
  while (done < length) {
    const direct = done < aligned;
    const want = (direct ? aligned : length) - done;
    const n = yield { fd: direct ? src.fd : src.tailFd, offset: done, length: want };
    if (n === 0) break;
    done += n;
    if (direct && n < want) aligned = done; // end of file: the rest, if any, through the cache
  }
  return done;
}

/** Reads `view.length` bytes at `position`; past the end of a short file the guest sees zeros. */
export function readBlockSync(src: BlockSource, view: Uint8Array, position: number): void {
  const steps = readSteps(src, view.length);
  let step = steps.next();
  while (!step.done) step = steps.next(readSync(step.value.fd, view, step.value.offset, step.value.length, position + step.value.offset));
  view.fill(0, step.value);
}

/** `readBlockSync` without blocking the calling thread. */
export async function readBlock(src: BlockSource, view: Uint8Array, position: number): Promise<void> {
  const steps = readSteps(src, view.length);
  let step = steps.next();
  while (!step.done) {
    const { fd, offset, length } = step.value;
    const n = await new Promise<number>((resolve, reject) => read(fd, view, offset, length, position + offset, (e, bytes) => (e ? reject(e) : resolve(bytes))));
    step = steps.next(n);
  }
  view.fill(0, step.value);
}
