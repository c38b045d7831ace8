/**
 * Reading one block and deciding what it holds: shared by the hashing
 * threads (which read, check and hash in one go) and by the calling thread
 * when a pool runs without threads.
 */
import { readSync } from 'node:fs';

const ZERO_PAGE = Buffer.alloc(64 * 1024);

/** True when every byte is zero (compares 64 KiB at a time; memcmp speed). */
export function isAllZero(buf: Uint8Array): boolean {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let off = 0; off < b.length; off += ZERO_PAGE.length) {
    const end = Math.min(b.length, off + ZERO_PAGE.length);
    if (!b.subarray(off, end).equals(ZERO_PAGE.subarray(0, end - off))) return false;
  }
  return true;
}

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
  let aligned = src.fd === src.tailFd ? length : length - (length % 4096);
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
