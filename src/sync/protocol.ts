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

/** The digest a Hash or VerifyHash frame carries; undefined for a block of zeros. */
export function frameDigest(frame: Frame): Buffer | undefined {
  return frame.flags & FrameFlag.ZeroBlock ? undefined : frame.payload;
}

/** A JSON frame's message (Hello, Ready, End, Verdict, Ack's load): the peer proved itself with the session's token. */
export function frameJson<T>(frame: Frame): T {
  return JSON.parse(frame.payload.toString()) as T;
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
