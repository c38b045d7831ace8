/**
 * Frames out of a byte stream delivered in chunks ('data' events): the
 * source's side reads this way, since it receives little (digests, acks).
 * The destination, which receives the blocks, uses frame-assembler.ts.
 */
import { HEADER_SIZE, type Frame, type FrameType } from './protocol.js';

/** Splits a byte stream into frames; feed it chunks, it calls onFrame in order. */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER_SIZE) return;
      const head = this.peek(HEADER_SIZE);
      const length = head.readUInt32BE(4);
      if (this.buffered < HEADER_SIZE + length) return;
      const type = head.readUInt8(0) as FrameType;
      const flags = head.readUInt8(1);
      const index = Number(head.readBigUInt64BE(8));
      this.take(HEADER_SIZE);
      const parts = this.take(length);
      let joined: Buffer | undefined;
      this.onFrame({
        type,
        flags,
        index,
        parts,
        get payload(): Buffer {
          joined ??= parts.length === 1 ? parts[0]! : Buffer.concat(parts);
          return joined;
        },
      });
    }
  }

  /** The first n buffered bytes in one buffer (joins only the few pieces needed). */
  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const c = this.chunks.shift()!;
      parts.push(c);
      have += c.length;
    }
    const joined = Buffer.concat(parts);
    this.chunks.unshift(joined);
    return joined;
  }

  /** Removes n bytes from the front, as slices of the received chunks. */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) {
        out.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        out.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}
