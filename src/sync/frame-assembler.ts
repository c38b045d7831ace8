/**
 * Frames out of a socket that reads into buffers it is given (net.Socket's
 * `onread`, with `nextBuffer()` choosing each read's buffer). A block's
 * payload is read straight into an aligned pooled buffer, which the
 * consumer writes with direct I/O and gives back; headers and small
 * payloads land in one reused scratch buffer and are copied out.
 *
 * Why: every copy of a block costs the receiver's main thread, and node's
 * plain 'data' events allocate a fresh buffer per read that only a garbage
 * collection frees, growing the heap page by freshly cleared page.
 */
import { alignedBuffer } from '../storage/aligned-memory.js';
import { HEADER_SIZE, type Frame, type FrameType } from './protocol.js';

/** Payloads up to this size get a buffer of their own (few: digests, JSON). */
const SMALL_PAYLOAD = 64 * 1024;
/** Bytes of freed block buffers kept for reuse; more in use at once are allocated and left to the collector. */
const POOL_BYTES = 64 << 20;
/**
 * The scratch buffer's size: at most this much of a block is copied (what
 * follows its header in the same read). Small frames (digests) come many to
 * a read all the same.
 */
const SCRATCH_BYTES = 64 * 1024;
/** A payload's rest is read in place when at least this long; a shorter rest is not worth a read of its own. */
const IN_PLACE_MIN = 4096;

/** A frame whose payload lives in a pooled buffer: `release()` when done with it. */
export interface PooledFrame extends Frame {
  release(): void;
}

export class FrameAssembler {
  /** Called for every complete frame, in order. */
  onFrame: (f: PooledFrame) => void = () => undefined;
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerHave = 0;
  private payload: Buffer | undefined;
  /** Whether `payload` came from the pool (and goes back to it). */
  private pooled = false;
  private payloadHave = 0;
  private payloadLength = 0;
  private readonly free: Buffer[] = [];
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

  private readonly poolLimit: number;

  /** @param blockSize payloads up to this size (a block) are taken from the pool */
  constructor(private readonly blockSize: number) {
    this.poolLimit = Math.max(4, Math.floor(POOL_BYTES / blockSize));
  }

  /** Buffers allocated for the pool so far, in use or free (for tests). */
  allocated = 0;

  /**
   * The buffer the next read should fill: the rest of the payload under
   * way when it is a block's, else the scratch buffer.
   */
  nextBuffer(): Uint8Array {
    // A payload buffer exists only between its header and its last byte.
    if (this.pooled && this.payload && this.payloadLength - this.payloadHave >= IN_PLACE_MIN) {
      return this.payload.subarray(this.payloadHave, this.payloadLength);
    }
    return this.scratch;
  }

  /** `n` bytes were read into `buf`, which `nextBuffer()` gave. */
  received(buf: Uint8Array, n: number): void {
    if (buf === this.scratch) {
      this.push(buf, n);
      return;
    }
    // Read in place: the bytes are already where they belong.
    this.payloadHave += n;
    if (this.payloadHave === this.payloadLength) this.emit();
  }

  /** Takes `n` bytes from `chunk`; they are copied, the chunk may be reused at once. */
  push(chunk: Uint8Array, n: number): void {
    let at = 0;
    while (at < n) {
      if (this.headerHave < HEADER_SIZE) {
        const take = Math.min(HEADER_SIZE - this.headerHave, n - at);
        this.header.set(chunk.subarray(at, at + take), this.headerHave);
        this.headerHave += take;
        at += take;
        if (this.headerHave < HEADER_SIZE) return;
        this.payloadLength = this.header.readUInt32BE(4);
        this.payloadHave = 0;
        this.pooled = this.payloadLength > SMALL_PAYLOAD && this.payloadLength <= this.blockSize;
        this.payload = !this.payloadLength ? undefined : this.pooled ? this.take() : Buffer.allocUnsafe(this.payloadLength);
      }
      if (this.payloadHave < this.payloadLength) {
        const take = Math.min(this.payloadLength - this.payloadHave, n - at);
        this.payload!.set(chunk.subarray(at, at + take), this.payloadHave);
        this.payloadHave += take;
        at += take;
        if (this.payloadHave < this.payloadLength) return;
      }
      this.emit();
    }
  }

  private emit(): void {
    const h = this.header;
    const buffer = this.payload;
    const pooled = this.pooled;
    const payload = buffer ? buffer.subarray(0, this.payloadLength) : Buffer.alloc(0);
    this.headerHave = 0;
    this.payload = undefined;
    let released = false;
    this.onFrame({
      type: h.readUInt8(0) as FrameType,
      flags: h.readUInt8(1),
      index: Number(h.readBigUInt64BE(8)),
      payload,
      parts: [payload],
      release: () => {
        if (released || !pooled) return;
        released = true;
        if (this.free.length < this.poolLimit) this.free.push(buffer!);
      },
    });
  }

  private take(): Buffer {
    const reused = this.free.pop();
    if (reused) return reused;
    this.allocated++;
    return alignedBuffer(this.blockSize);
  }
}
