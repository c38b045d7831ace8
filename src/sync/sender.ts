/**
 * The source end of a sync, run by the source host's agent: reads and hashes
 * its disk while the destination does the same, and for every block sends
 * the bytes only when the destination's hash differs. Zero blocks (holes in
 * the allocation map, or read as all zeros) never carry bytes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { inspectDisk, sameDisk, type DiskInfo } from '../storage/image-info.js';
import { FerryError } from '../util/errors.js';
import { readBlocks, type BlockState } from './block-reader.js';
import { CompressionPolicy, type CompressMode } from './compression.js';
import { DigestTable } from './digest-table.js';
import { examineBlock } from './examine-block.js';
import { FrameFlag, FrameParser, FrameType, FrameWriter, HEADER_SIZE, decodeHashes, type ReceiverLoad, type ReceiverReady, type SenderEnd, type SenderHello, type VerifyVerdict } from './protocol.js';
import { closeSourceDisk, openSourceDisk, type SourceDisk } from './source-disk.js';
import type { SourceScan } from './source-scan.js';
import { Throttle } from './throttle.js';
import { trace } from '../util/trace.js';
import type { SendResult, SyncProgress } from './sync-progress.js';

export type { SendResult, SyncProgress } from './sync-progress.js';

export interface SendOptions {
  path: string;
  /** Address to listen on for the destination agent (the source host's inventory address). */
  address: string;
  sourceId: string;
  blockSize: number;
  compress: CompressMode;
  /** Bytes per second; undefined for no limit. */
  bandwidth?: number;
  resume: boolean;
  dryRun: boolean;
  verify: boolean;
  /** Have the destination flush its disk before it reports done. */
  fsync: boolean;
  hashThreads?: number;
  /** The source as the controller just inspected it (saves probing it again). */
  info?: DiskInfo;
  /** Aborting stops waiting for the destination or drops the connection; the destination keeps its checkpoint. */
  signal?: AbortSignal;
  /** How long to wait for the destination to connect (default 60 s). */
  connectTimeoutMs?: number;
  /** A head-start scan of this source (see source-scan.ts); the sender takes it over. */
  scan?: SourceScan;
}

/** A send under way: where the destination connects, with what token, and the result. */
export interface SendSession {
  port: number;
  token: string;
  result: Promise<SendResult>;
}

/**
 * Opens the source (or takes over its head-start scan), listens for the
 * destination and answers with the port and token to give it; the sync
 * runs once the destination has connected and said the token.
 *
 * The destination connects, not the source, because the receiving end
 * reads far more than it writes and only a connecting socket can read
 * into one reused buffer (see frame-assembler.ts).
 */
export async function startSend(o: SendOptions, onProgress: (p: SyncProgress) => void): Promise<SendSession> {
  let scan = o.scan;
  // A scan of another disk (or the same path, replaced since) or block size is no use.
  if (scan && (scan.info.path !== o.path || (o.info && !sameDisk(scan.info, o.info)) || scan.source.blockSize !== o.blockSize)) {
    await scan.close();
    scan = undefined;
  }
  // A scan owns the source it opened: closing it closes both.
  const release = async (source?: SourceDisk): Promise<void> => {
    if (scan) await scan.close();
    else if (source) await closeSourceDisk(source);
  };
  let source: SourceDisk | undefined;
  let server: net.Server;
  const token = randomBytes(16).toString('hex');
  try {
    const info = scan?.info ?? (o.info?.path === o.path ? o.info : await inspectDisk(o.path));
    if (!info.exists) throw new FerryError('NOT_FOUND', `Cannot read source "${o.path}": not found`, { hint: 'check the source path' });
    trace('send: start');
    source = scan?.source ?? (await openSourceDisk(info, o.blockSize, o.hashThreads));
    trace('send: disk open');
    server = await listen(o.address);
  } catch (e) {
    await release(source);
    throw e;
  }
  const port = (server.address() as net.AddressInfo).port;
  const opened = source;
  const result = (async (): Promise<SendResult> => {
    let socket: net.Socket | undefined;
    const abort = (): void => void socket?.destroy();
    try {
      socket = await acceptDestination(server, token, o.connectTimeoutMs ?? 60_000, o.signal);
      o.signal?.addEventListener('abort', abort);
      return await runSender(o, token, opened, scan, socket, onProgress);
    } finally {
      o.signal?.removeEventListener('abort', abort);
      server.close();
      socket?.destroy();
      await release(opened);
    }
  })();
  result.catch(() => undefined); // the caller awaits it
  return { port, token, result };
}

function listen(address: string): Promise<net.Server> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new FerryError('UNREACHABLE', `Cannot listen for the sync on ${address}: ${e.message}`, { hint: "check the host's address in the inventory" })),
    );
    server.listen(0, address, () => resolve(server));
  });
}

/**
 * The first connection that says the session's token (a Join frame) within
 * the time allowed; others are dropped, as is one that says more than a
 * token's worth before it. Nothing else comes from the destination before
 * this side's Hello.
 */
function acceptDestination(server: net.Server, token: string, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const address = server.address() as net.AddressInfo;
    const unproven = new Set<net.Socket>();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      server.off('connection', connection);
      for (const s of unproven) s.destroy();
    };
    const timer = setTimeout(() => {
      done();
      reject(new FerryError('UNREACHABLE', `No destination connected to ${address.address}:${address.port} within ${Math.round(timeoutMs / 1000)} s`, { hint: 'check that the destination host can reach the source address (firewall, inventory address)' }));
    }, timeoutMs);
    const aborted = (): void => {
      done();
      reject(new FerryError('ABORTED', 'Sync cancelled before the destination connected'));
    };
    signal?.addEventListener('abort', aborted);
    const expected = Buffer.from(token);
    const connection = (socket: net.Socket): void => {
      socket.on('error', () => undefined);
      unproven.add(socket);
      socket.once('close', () => unproven.delete(socket));
      let heard = 0;
      const parser = new FrameParser((f) => {
        socket.off('data', onData);
        unproven.delete(socket);
        const said = f.payload;
        if (f.type === FrameType.Join && said.length === expected.length && timingSafeEqual(said, expected)) {
          done();
          resolve(socket);
        } else {
          socket.destroy();
        }
      });
      const onData = (d: Buffer): void => {
        heard += d.length;
        if (heard > HEADER_SIZE + 2 * expected.length) socket.destroy();
        else parser.push(d);
      };
      socket.on('data', onData);
    };
    server.on('connection', connection);
  });
}

/** A block as the sender meets it; a data block decided from its digest alone (equal on both sides) has no bytes. */
type SourceBlock = BlockState | { index: number; zero: false; length: number; digest: Buffer; slot?: undefined };

/**
 * Blocks found changed in a head-start scan are read again one by one: past
 * this many, and past one block in 16, the scan is given up for the usual
 * reading, which reads each block once.
 */
const SCAN_CHANGE_BUDGET = 64;

async function runSender(o: SendOptions, token: string, source: SourceDisk, scan: SourceScan | undefined, socket: net.Socket, onProgress: (p: SyncProgress) => void): Promise<SendResult> {
  const { disk, pool, window } = source;
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
    bytesToVerify: 0,
    compressing: false,
    seconds: 0,
  };

  socket.setNoDelay(true);
  const writer = new FrameWriter(socket);
  const dropAfter = Number(process.env.FERRY_SYNC_DROP_AFTER_BYTES ?? 0); // fault injection for tests

  // Everything the destination tells us, as it arrives.
  const theirs = new DigestTable(blockCount);
  const readBack = new DigestTable(blockCount);
  let ready: ((r: ReceiverReady) => void) | undefined;
  /** Share of time the destination spends writing: when high, it (not the link) holds the sync back. */
  let receiverBusy = 0;
  let doneFrame: (() => void) | undefined;
  let closed: FerryError | undefined;
  const closeWaiters = new Set<(e: FerryError) => void>();
  const parser = new FrameParser((f) => {
    switch (f.type) {
      case FrameType.Ready:
        ready?.(JSON.parse(f.payload.toString()) as ReceiverReady);
        break;
      case FrameType.Hash:
        theirs.set(f.index, f.flags & FrameFlag.ZeroBlock ? undefined : f.payload);
        if (f.index === blockCount - 1) trace('send: all destination digests in');
        break;
      case FrameType.Hashes:
        decodeHashes(f.payload, (k, digest) => theirs.set(f.index + k, digest));
        if (theirs.has(blockCount - 1)) trace('send: all destination digests in');
        break;
      case FrameType.VerifyHash:
        readBack.set(f.index, f.flags & FrameFlag.ZeroBlock ? undefined : f.payload);
        break;
      case FrameType.Ack:
        progress.blocksConfirmed = f.index;
        if (f.payload.length) receiverBusy = (JSON.parse(f.payload.toString()) as ReceiverLoad).busy;
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
  const arrived = (table: DigestTable, i: number): Promise<void> => (table.has(i) ? Promise.resolve() : orClose(table.wait(i)));

  const readyP = new Promise<ReceiverReady>((r) => (ready = r));
  const hello: SenderHello = { token, size, blockSize, sourceId: o.sourceId, resume: o.resume, dryRun: o.dryRun, verify: o.verify && !o.dryRun };
  await writer.sendJson(FrameType.Hello, hello);
  const { startBlock } = await orClose(readyP);
  trace('send: destination ready');
  progress.blocksResumed = startBlock;
  progress.blocksConfirmed = startBlock;
  progress.bytesCompared = Math.min(size, startBlock * blockSize);

  const throttle = new Throttle(o.bandwidth);
  const policy = new CompressionPolicy(o.compress, o.bandwidth);
  const mine = new DigestTable(blockCount);
  /** Blocks this run sent (data or zeros): with the resumed ones, what verification reads back. */
  const sent = new Uint8Array(blockCount);
  let waitingSeconds = 0;
  let lastDecision = performance.now();
  let sentAtDecision = 0;
  const report = (): void => {
    progress.seconds = (performance.now() - started) / 1000;
    progress.compressing = policy.active;
    onProgress({ ...progress });
  };
  const ticker = setInterval(report, 250);

  try {
    const dataBlocks = await source.dataBlocks;
    trace('send: source mapped');
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

    // A digest is needed to compare with a destination block that holds
    // data, and for the verification; a block going onto zeros without
    // verification is sent unhashed.
    const needsDigest = (i: number): boolean => o.verify || !theirs.has(i) || !theirs.isZero(i);
    // Equal blocks are announced in runs: one frame for thousands of them.
    let same: { start: number; count: number } | undefined;
    const flushSame = async (): Promise<void> => {
      if (!same) return;
      const run = same;
      same = undefined;
      const count = Buffer.allocUnsafe(4);
      count.writeUInt32BE(run.count);
      await send(FrameType.Same, run.start, count);
    };
    const lengthOf = (i: number): number => Math.min(blockSize, size - i * blockSize);
    /**
     * The blocks from `startBlock` on: those a head-start scan hashed are
     * decided from their digests (those that must cross are read again, and
     * sent with the digest of what was read); if the scan is given up (too
     * many cross) or fails, the rest is read as usual from where it stopped.
     */
    async function* blocks(): AsyncGenerator<SourceBlock> {
      let from = startBlock;
      if (scan) {
        let changed = 0;
        for (; from < blockCount; from++) {
          const i = from;
          if (!(await scan.reached(i))) break; // the scan stopped short (a read failed)
          await arrived(theirs, i);
          if (scan.digests.isZero(i)) {
            yield { index: i, zero: true, length: lengthOf(i) };
            continue;
          }
          const digest = Buffer.from(scan.digests.digest(i));
          if (!theirs.isZero(i) && theirs.digest(i).equals(digest)) {
            yield { index: i, zero: false, length: lengthOf(i), digest };
            continue;
          }
          if (++changed > Math.max(SCAN_CHANGE_BUDGET, (i - startBlock) / 16)) {
            await scan.stop();
            break;
          }
          // Read again right here: a thread would take it only after the
          // scan's chunks queued before it (tens of milliseconds each time).
          const slot = await pool.acquire();
          try {
            const r = examineBlock(disk.blockSource(), slot.buf.subarray(0, lengthOf(i)), i * blockSize, true);
            if (r.zero) pool.release(slot);
            yield r.zero ? { index: i, zero: true, length: lengthOf(i) } : { index: i, zero: false, length: lengthOf(i), digest: Buffer.from(r.digest!), slot };
          } catch (e) {
            pool.release(slot);
            throw e;
          }
        }
        trace(`send: scanned blocks decided up to ${from}`);
      }
      yield* readBlocks({ disk, pool, blockSize, dataBlocks, from, to: blockCount, window, needsDigest });
    }
    for await (const b of blocks()) {
      await arrived(theirs, b.index);
      if (b.zero) mine.set(b.index, undefined);
      else if (b.digest) mine.set(b.index, b.digest);
      if (b.zero) progress.blocksZero++;
      if (mine.has(b.index) && mine.same(b.index, theirs)) {
        if (!b.zero && b.slot) pool.release(b.slot);
        if (!o.dryRun) {
          if (same) same.count++;
          else same = { start: b.index, count: 1 };
          if (same.count >= 1024) await flushSame();
        }
      } else if (b.zero) {
        await flushSame();
        progress.blocksChanged++;
        sent[b.index] = 1;
        if (!o.dryRun) await send(FrameType.Zero, b.index);
      } else {
        // Only a block found equal is ever decided without its bytes.
        if (!b.slot) throw new FerryError('INTERNAL', `Block ${b.index} must be sent but was not read`);
        await flushSame();
        progress.blocksChanged++;
        sent[b.index] = 1;
        progress.bytesChanged += b.length;
        if (o.dryRun) {
          pool.release(b.slot);
        } else {
          // The destination remembers what it holds for the next sync.
          if (b.digest) await send(FrameType.SourceDigest, b.index, b.digest);
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
      progress.bytesCompared += b.length;
      const now = performance.now();
      if (now - lastDecision > 2000) {
        const elapsed = (now - lastDecision) / 1000;
        // The link's rate is what the socket drained; it is the limit when
        // sending mostly waited while the destination was not busy writing.
        policy.update((writer.bytesWritten - sentAtDecision) / elapsed, waitingSeconds / elapsed > 0.5 && receiverBusy < 0.5);
        sentAtDecision = writer.bytesWritten;
        waitingSeconds = 0;
        lastDecision = now;
      }
    }

    await flushSame();
    trace('send: compared');
    const doneP = new Promise<void>((r) => (doneFrame = r));
    await send(FrameType.End, 0, Buffer.from(JSON.stringify({ verify: o.verify && !o.dryRun, fsync: o.fsync } satisfies SenderEnd)));
    let mismatches: Array<{ start: number; length: number }> = [];
    let verified = false;
    if (o.verify && !o.dryRun) {
      progress.phase = 'verify';
      for (let i = 0; i < blockCount; i++) if (i < startBlock || sent[i] === 1) progress.bytesToVerify += Math.min(blockSize, size - i * blockSize);
      // Blocks skipped by a resume: the scan may have their digests already.
      if (scan) for (let i = 0; i < startBlock && i < scan.scanned; i++) mine.set(i, scan.digests.isZero(i) ? undefined : scan.digests.digest(i));
      mismatches = await verifyAgainst(o, source, dataBlocks, mine, readBack, (i) => i < startBlock || sent[i] === 1, (i) => arrived(readBack, i), progress);
      verified = mismatches.length === 0;
      await send(FrameType.Verdict, 0, Buffer.from(JSON.stringify({ ok: verified, mismatches } satisfies VerifyVerdict)));
    }
    trace('send: verified');
    await orClose(doneP);
    trace('send: done');
    progress.phase = 'done';
    progress.blocksConfirmed = blockCount;
    report();
    return { ...progress, verified, mismatches };
  } finally {
    clearInterval(ticker);
  }
}

/**
 * Compares the digests of the blocks the destination read back from its disk
 * (those written by this run or a resumed one) with the source's; returns
 * the differing byte ranges.
 */
async function verifyAgainst(
  o: SendOptions,
  source: SourceDisk,
  dataBlocks: Uint8Array,
  mine: DigestTable,
  readBack: DigestTable,
  written: (i: number) => boolean,
  arrived: (i: number) => Promise<void>,
  progress: SyncProgress,
): Promise<Array<{ start: number; length: number }>> {
  const { disk, pool, window } = source;
  const size = disk.size;
  const blockSize = o.blockSize;
  const blockCount = mine.count;
  // Blocks skipped by a resume have no digest yet: hash them now, while the destination reads back.
  const filling = (async () => {
    for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks, from: 0, to: blockCount, window, wanted: (i) => !mine.has(i) })) {
      mine.set(b.index, b.zero ? undefined : b.digest);
      if (!b.zero) pool.release(b.slot);
    }
  })();
  filling.catch(() => undefined);
  const mismatches: Array<{ start: number; length: number }> = [];
  for (let i = 0; i < blockCount; i++) {
    if (!written(i)) continue;
    await arrived(i);
    if (!mine.has(i)) await Promise.race([mine.wait(i), filling.then(() => mine.wait(i))]);
    const length = Math.min(blockSize, size - i * blockSize);
    if (!mine.same(i, readBack)) {
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
