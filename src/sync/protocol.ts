/**
 * The wire protocol between the source and destination agents, one TCP
 * connection (the destination connects to the source, and proves with the
 * session's token that it is the one the controller sent), framed both
 * ways. Every frame has a 16-byte header:
 *
 *   0  type (u8)   1  flags (u8)   2  reserved (u16)
 *   4  payload length (u32 BE)     8  block index (u64 BE)
 *
 * Nothing waits for an answer per block: the destination streams its block
 * hashes as fast as it reads them, the source streams a verdict for every
 * block (same / zero / data) in order, and the destination acknowledges
 * durable progress now and then.
 */
import type { Socket } from 'node:net';

export const FrameType = {
  // source -> destination
  Hello: 1, // JSON SenderHello
  Data: 2, // block bytes (flags & Compressed: zstd)
  Zero: 3, // block must read as zeros
  Same: 4, // blocks index.. already equal (payload: u32 BE count; none = 1)
  End: 5, // JSON SenderEnd
  Verdict: 6, // JSON VerifyVerdict
  SourceDigest: 7, // 16-byte digest of the Data block that follows (when the source hashed it)
  // destination -> source
  Join: 27, // the session token: the destination connects to the source's listener and says this first
  Ready: 20, // JSON ReceiverReady
  Hash: 21, // 16-byte digest (flags & ZeroBlock: block is all zeros, no payload)
  Hashes: 26, // digests of blocks index.. (payload: per block, a state byte, 0 zeros or 1 digest, then 16 digest bytes)
  Ack: 22, // index = every block below it is written and safe from a crash of either agent; JSON ReceiverLoad
  VerifyHash: 23, // digest of a block read back from disk
  Failed: 24, // JSON { code, message, hint }
  Done: 25, // JSON { } the destination closed cleanly
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FrameFlag = {
  Compressed: 1,
  ZeroBlock: 2,
} as const;

export const HEADER_SIZE = 16;

/** Bytes per block in a Hashes frame. */
const HASHES_ENTRY = 17;

/** A Hashes payload: each block's digest, or undefined for a zero block. */
export function encodeHashes(digests: Array<Uint8Array | undefined>): Buffer {
  const out = Buffer.alloc(digests.length * HASHES_ENTRY);
  digests.forEach((d, k) => {
    if (!d) return;
    out[k * HASHES_ENTRY] = 1;
    out.set(d.subarray(0, HASHES_ENTRY - 1), k * HASHES_ENTRY + 1);
  });
  return out;
}

/** Calls `each` for every block of a Hashes payload, with its digest or undefined for a zero block. */
export function decodeHashes(payload: Buffer, each: (k: number, digest: Buffer | undefined) => void): void {
  for (let k = 0; (k + 1) * HASHES_ENTRY <= payload.length; k++) {
    const at = k * HASHES_ENTRY;
    each(k, payload[at] === 1 ? payload.subarray(at + 1, at + HASHES_ENTRY) : undefined);
  }
}

export interface Frame {
  type: FrameType;
  flags: number;
  index: number;
  /** The payload in one buffer (joined on first access when it arrived in pieces). */
  readonly payload: Buffer;
  /** The payload as it arrived, in pieces: write these with writev, no copy. */
  readonly parts: Buffer[];
}

export function encodeHeader(type: FrameType, flags: number, index: number, payloadLength: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  h.writeUInt8(type, 0);
  h.writeUInt8(flags, 1);
  h.writeUInt16BE(0, 2);
  h.writeUInt32BE(payloadLength, 4);
  h.writeBigUInt64BE(BigInt(index), 8);
  return h;
}

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

/** Writes frames with backpressure; counts bytes put on the wire. */
export class FrameWriter {
  bytesWritten = 0;
  private drained: Promise<void> | undefined;
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /**
   * Queues a frame. Resolves once the socket can take more (not when the
   * bytes are sent); `onFlushed` fires when the payload buffer is free again.
   */
  async send(type: FrameType, index: number, payload?: Uint8Array, flags = 0, onFlushed?: () => void): Promise<void> {
    if (this.socket.destroyed) throw new Error('the sync connection is closed');
    const length = payload?.length ?? 0;
    this.bytesWritten += HEADER_SIZE + length;
    // Thousands of small frames (hashes, verdicts) go out together: the
    // socket gathers what is written in one tick into one system call.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let ok = this.socket.write(encodeHeader(type, flags, index, length));
    if (payload && length) ok = this.socket.write(payload, onFlushed ? () => onFlushed() : undefined);
    else onFlushed?.();
    if (!ok) await this.waitDrain();
  }

  sendJson(type: FrameType, value: unknown): Promise<void> {
    return this.send(type, 0, Buffer.from(JSON.stringify(value)));
  }

  private waitDrain(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    this.drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.drained = undefined;
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    return this.drained;
  }
}

export interface SenderHello {
  token: string;
  size: number;
  blockSize: number;
  /** Source identity, so a checkpoint is only resumed against the same source. */
  sourceId: string;
  resume: boolean;
  dryRun: boolean;
  /** The run ends with a verification: the destination may read written blocks back as it goes. */
  verify: boolean;
}

export interface ReceiverReady {
  /** First block the source must handle; blocks below were confirmed earlier. */
  startBlock: number;
}

export interface SenderEnd {
  verify: boolean;
  /** Flush the destination before answering Done (default); false leaves it to the kernel. */
  fsync: boolean;
}

/** How the destination is keeping up, sent with each Ack. */
export interface ReceiverLoad {
  /** Share of the last interval the destination spent writing rather than waiting for data (0..1). */
  busy: number;
}

export interface VerifyVerdict {
  ok: boolean;
  mismatches: Array<{ start: number; length: number }>;
}
