/**
 * The source end of a sync, run by the source host's agent: reads and hashes
 * its disk while the destination does the same, and for every block sends
 * the bytes only when the destination's hash differs. Zero blocks (holes in
 * the allocation map, or read as all zeros) never carry bytes.
 */
import * as net from 'node:net';
import { cpus } from 'node:os';
import { blocksWithData } from '../storage/allocation.js';
import { openDisk } from '../storage/endpoint.js';
import { inspectDisk } from '../storage/image-info.js';
import { FerryError } from '../util/errors.js';
import { readBlocks } from './block-reader.js';
import { CompressionPolicy, type CompressMode } from './compression.js';
import { HashPool, zeroDigest } from './hash-pool.js';
import { FrameFlag, FrameParser, FrameType, FrameWriter, type ReceiverReady, type SenderHello, type VerifyVerdict } from './protocol.js';
import { Throttle } from './throttle.js';

export interface SendOptions {
  path: string;
  /** Destination agent's listener. */
  host: string;
  port: number;
  token: string;
  sourceId: string;
  blockSize: number;
  compress: CompressMode;
  /** Bytes per second; undefined for no limit. */
  bandwidth?: number;
  resume: boolean;
  dryRun: boolean;
  verify: boolean;
  hashThreads?: number;
  /** Aborting drops the connection; the destination keeps its checkpoint. */
  signal?: AbortSignal;
}

export interface SyncProgress {
  phase: 'compare' | 'verify' | 'done';
  bytesTotal: number;
  bytesCompared: number;
  /** Bytes the source put on the wire (frames and payloads). */
  bytesSent: number;
  /** Block payload bytes before compression. */
  bytesChanged: number;
  blocksTotal: number;
  blocksChanged: number;
  blocksZero: number;
  /** Blocks confirmed by an earlier, interrupted run and skipped. */
  blocksResumed: number;
  /** Blocks the destination has made durable. */
  blocksConfirmed: number;
  bytesVerified: number;
  compressing: boolean;
  seconds: number;
}

export interface SendResult extends SyncProgress {
  verified: boolean;
  mismatches: Array<{ start: number; length: number }>;
}

const BLOCKED = Symbol('blocked');

export async function sendDisk(o: SendOptions, onProgress: (p: SyncProgress) => void): Promise<SendResult> {
  const info = await inspectDisk(o.path);
  if (!info.exists) throw new FerryError('NOT_FOUND', `Cannot read source "${o.path}": not found`, { hint: 'check the source path' });
  const disk = await openDisk(info, false);
  const threads = o.hashThreads ?? Math.min(4, cpus().length);
  const window = threads * 2 + 4;
  const pool = HashPool.create(o.blockSize, window + 16, threads);
  const socket = net.connect({ host: o.host, port: o.port });
  const abort = (): void => void socket.destroy();
  o.signal?.addEventListener('abort', abort);
  try {
    return await runSender(o, disk, pool, socket, window, onProgress);
  } finally {
    o.signal?.removeEventListener('abort', abort);
    socket.destroy();
    await pool.close();
    await disk.close();
  }
}

async function runSender(
  o: SendOptions,
  disk: Awaited<ReturnType<typeof openDisk>>,
  pool: HashPool,
  socket: net.Socket,
  window: number,
  onProgress: (p: SyncProgress) => void,
): Promise<SendResult> {
  const started = performance.now();
  const size = disk.size;
  const blockSize = o.blockSize;
  const blockCount = Math.ceil(size / blockSize);
  const progress: SyncProgress = {
    phase: 'compare',
    bytesTotal: size,
    bytesCompared: 0,
    bytesSent: 0,
    bytesChanged: 0,
    blocksTotal: blockCount,
    blocksChanged: 0,
    blocksZero: 0,
    blocksResumed: 0,
    blocksConfirmed: 0,
    bytesVerified: 0,
    compressing: false,
    seconds: 0,
  };
  const dataBlocksPromise = disk.dataRanges().then((r) => blocksWithData(r, size, blockSize));

  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (e) =>
      reject(new FerryError('UNREACHABLE', `Cannot connect to the destination agent at ${o.host}:${o.port}: ${e.message}`, { hint: 'check that the source host can reach the destination address (firewall, inventory address)' })),
    );
  });
  socket.setNoDelay(true);
  const writer = new FrameWriter(socket);
  const dropAfter = Number(process.env.FERRY_SYNC_DROP_AFTER_BYTES ?? 0); // fault injection for tests

  // Everything the destination tells us, as it arrives.
  const dstHashes: Array<Buffer | typeof BLOCKED | undefined> = [];
  const hashWaiters = new Map<number, () => void>();
  const verifyHashes: Array<Buffer | typeof BLOCKED | undefined> = [];
  const verifyWaiters = new Map<number, () => void>();
  let ready: ((r: ReceiverReady) => void) | undefined;
  let doneFrame: (() => void) | undefined;
  let closed: FerryError | undefined;
  const closeWaiters = new Set<(e: FerryError) => void>();
  const parser = new FrameParser((f) => {
    switch (f.type) {
      case FrameType.Ready:
        ready?.(JSON.parse(f.payload.toString()) as ReceiverReady);
        break;
      case FrameType.Hash:
        dstHashes[f.index] = f.flags & FrameFlag.ZeroBlock ? BLOCKED : Buffer.from(f.payload);
        hashWaiters.get(f.index)?.();
        break;
      case FrameType.VerifyHash:
        verifyHashes[f.index] = f.flags & FrameFlag.ZeroBlock ? BLOCKED : Buffer.from(f.payload);
        verifyWaiters.get(f.index)?.();
        break;
      case FrameType.Ack:
        progress.blocksConfirmed = f.index;
        break;
      case FrameType.Done:
        doneFrame?.();
        break;
    }
  });
  socket.on('data', (d: Buffer) => parser.push(d));
  const lost = (): FerryError =>
    new FerryError('ABORTED', `Sync from "${o.path}" interrupted: lost the connection to the destination after ${Math.ceil(progress.bytesCompared / blockSize)} of ${blockCount} blocks`, {
      hint: 'run the same command again with --resume to continue from the last checkpoint',
    });
  socket.on('close', () => {
    closed = lost();
    for (const w of closeWaiters) w(closed);
  });
  socket.on('error', () => undefined);
  const orClose = <T>(p: Promise<T>): Promise<T> =>
    closed
      ? Promise.reject(closed)
      : new Promise<T>((resolve, reject) => {
          closeWaiters.add(reject);
          p.then(resolve, reject).finally(() => closeWaiters.delete(reject));
        });
  const waitFor = (list: Array<Buffer | typeof BLOCKED | undefined>, waiters: Map<number, () => void>, i: number): Promise<Buffer | typeof BLOCKED> => {
    const v = list[i];
    if (v !== undefined) return Promise.resolve(v);
    return orClose(
      new Promise<Buffer | typeof BLOCKED>((resolve) =>
        waiters.set(i, () => {
          waiters.delete(i);
          resolve(list[i]!);
        }),
      ),
    );
  };

  const readyP = new Promise<ReceiverReady>((r) => (ready = r));
  const hello: SenderHello = { token: o.token, size, blockSize, sourceId: o.sourceId, resume: o.resume, dryRun: o.dryRun };
  await writer.sendJson(FrameType.Hello, hello);
  const { startBlock } = await orClose(readyP);
  progress.blocksResumed = startBlock;
  progress.blocksConfirmed = startBlock;
  progress.bytesCompared = Math.min(size, startBlock * blockSize);

  const throttle = new Throttle(o.bandwidth);
  const policy = new CompressionPolicy(o.compress, o.bandwidth);
  const srcDigests: Array<Buffer | undefined> = new Array(blockCount);
  const zeroDigests = new Map<number, Buffer>();
  const zeroDigestOf = async (length: number): Promise<Buffer> => {
    let d = zeroDigests.get(length);
    if (!d) zeroDigests.set(length, (d = await zeroDigest(length)));
    return d;
  };
  let waitingSeconds = 0;
  let lastDecision = performance.now();
  const report = (): void => {
    progress.seconds = (performance.now() - started) / 1000;
    progress.compressing = policy.active;
    onProgress({ ...progress });
  };
  const ticker = setInterval(report, 250);

  try {
    const dataBlocks = await dataBlocksPromise;
    const send = async (type: (typeof FrameType)[keyof typeof FrameType], index: number, payload?: Buffer, flags = 0, onFlushed?: () => void): Promise<void> => {
      if (closed) throw closed;
      if (payload) await throttle.take(payload.length);
      if (socket.destroyed) throw lost();
      const t0 = performance.now();
      await writer.send(type, index, payload, flags, onFlushed);
      waitingSeconds += (performance.now() - t0) / 1000;
      progress.bytesSent = writer.bytesWritten;
      if (dropAfter && writer.bytesWritten > dropAfter) socket.destroy();
    };

    for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks, from: startBlock, to: blockCount, window })) {
      const theirs = await waitFor(dstHashes, hashWaiters, b.index);
      dstHashes[b.index] = undefined; // keep memory flat on huge disks
      if (b.zero) {
        srcDigests[b.index] = await zeroDigestOf(b.length);
        progress.blocksZero++;
        if (theirs === BLOCKED) {
          if (!o.dryRun) await send(FrameType.Same, b.index);
        } else {
          progress.blocksChanged++;
          if (!o.dryRun) await send(FrameType.Zero, b.index);
        }
      } else {
        srcDigests[b.index] = b.digest;
        if (theirs !== BLOCKED && theirs.equals(b.digest)) {
          pool.release(b.slot);
          if (!o.dryRun) await send(FrameType.Same, b.index);
        } else {
          progress.blocksChanged++;
          progress.bytesChanged += b.length;
          if (o.dryRun) {
            pool.release(b.slot);
          } else {
            const bytes = b.slot.buf.subarray(0, b.length);
            const packed = policy.maybeCompress(bytes);
            if (packed) {
              pool.release(b.slot);
              await send(FrameType.Data, b.index, packed, FrameFlag.Compressed);
            } else {
              const slot = b.slot;
              await send(FrameType.Data, b.index, bytes, 0, () => pool.release(slot));
            }
          }
        }
      }
      progress.bytesCompared += b.length;
      const now = performance.now();
      if (now - lastDecision > 2000) {
        const elapsed = (now - lastDecision) / 1000;
        policy.update(undefined, waitingSeconds / elapsed > 0.5);
        waitingSeconds = 0;
        lastDecision = now;
      }
    }

    const doneP = new Promise<void>((r) => (doneFrame = r));
    await send(FrameType.End, 0, Buffer.from(JSON.stringify({ verify: o.verify && !o.dryRun })));
    let mismatches: Array<{ start: number; length: number }> = [];
    let verified = false;
    if (o.verify && !o.dryRun) {
      progress.phase = 'verify';
      mismatches = await verifyAgainst(o, disk, pool, dataBlocks, srcDigests, window, zeroDigestOf, (i) => waitFor(verifyHashes, verifyWaiters, i), progress);
      verified = mismatches.length === 0;
      await send(FrameType.Verdict, 0, Buffer.from(JSON.stringify({ ok: verified, mismatches } satisfies VerifyVerdict)));
    }
    await orClose(doneP);
    progress.phase = 'done';
    progress.blocksConfirmed = blockCount;
    report();
    return { ...progress, verified, mismatches };
  } finally {
    clearInterval(ticker);
  }
}

/** Compares the destination's read-back digests with the source's, block by block; returns the differing byte ranges. */
async function verifyAgainst(
  o: SendOptions,
  disk: Awaited<ReturnType<typeof openDisk>>,
  pool: HashPool,
  dataBlocks: Uint8Array,
  srcDigests: Array<Buffer | undefined>,
  window: number,
  zeroDigestOf: (length: number) => Promise<Buffer>,
  readBack: (i: number) => Promise<Buffer | typeof BLOCKED>,
  progress: SyncProgress,
): Promise<Array<{ start: number; length: number }>> {
  const size = disk.size;
  const blockSize = o.blockSize;
  const blockCount = srcDigests.length;
  // Blocks skipped by a resume have no digest yet: hash them now, while the destination reads back.
  const missing = readBlocks({ disk, pool, blockSize, dataBlocks, from: 0, to: blockCount, window, wanted: (i) => srcDigests[i] === undefined });
  const filling = (async () => {
    for await (const b of missing) {
      srcDigests[b.index] = b.zero ? await zeroDigestOf(b.length) : b.digest;
      if (!b.zero) pool.release(b.slot);
    }
  })();
  const mismatches: Array<{ start: number; length: number }> = [];
  for (let i = 0; i < blockCount; i++) {
    const theirs = await readBack(i);
    const length = Math.min(blockSize, size - i * blockSize);
    while (srcDigests[i] === undefined) await Promise.race([filling, new Promise((r) => setTimeout(r, 5))]);
    const mine = srcDigests[i]!;
    const theirDigest = theirs === BLOCKED ? await zeroDigestOf(length) : theirs;
    if (!mine.equals(theirDigest)) {
      const start = i * blockSize;
      const last = mismatches[mismatches.length - 1];
      if (last && last.start + last.length === start) last.length += length;
      else mismatches.push({ start, length });
    }
    progress.bytesVerified += length;
  }
  await filling;
  return mismatches;
}
