/** Telling all-zero blocks apart: such a block costs nothing to send and reads back as a hole. */

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
