/**
 * The destination's side of one sync connection: streams the destination's
 * block digests (from memory when a digest cache still describes the disk,
 * else by reading and hashing it), applies the source's verdict for every
 * block in order, records resume points, and at the end flushes, reads the
 * written blocks back for the verification and remembers the digests.
 */
import type * as net from 'node:net';
import { cpus } from 'node:os';
import { decompress } from 'zstd-napi';
import { blocksWithData } from '../storage/allocation.js';
import type { DiskEndpoint } from '../storage/endpoint.js';
import { FerryError, asFerryError } from '../util/errors.js';
import { readBlocks, type BlockState } from './block-reader.js';
import { removeCheckpoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';
import { dropDigestCache, saveDigestCache } from './digest-cache.js';
import { DigestTable } from './digest-table.js';
import { HashPool } from './hash-pool.js';
import { alignedSharedMemory } from '../storage/aligned-memory.js';
import { readBlock } from '../storage/block-read.js';
import { isAllZero } from './examine-block.js';
import { xxh128 } from './xxh128.js';
import { trace } from '../util/trace.js';
import type { FrameAssembler, PooledFrame } from './frame-assembler.js';
import { FrameFlag, FrameType, FrameWriter, encodeHashes, type ReceiverLoad, type SenderEnd, type SenderHello, type VerifyVerdict } from './protocol.js';

export interface StreamOptions {
  path: string;
  sourceId: string;
  size: number;
  blockSize: number;
  dryRun: boolean;
  hashThreads?: number;
  token: string;
  /** First block to handle; those below were confirmed by an earlier run. */
  resumeFrom: number;
  /** Durable mark of the checkpoint resumed from. */
  durableFrom: number;
  /** Digests of the destination known without reading it: remembered ones still valid, or those of a disk just created. */
  known?: DigestTable;
}

export interface ReceiveResult {
  /** Whether the destination was written with direct I/O (bypassing the page cache). */
  directIo: boolean;
  bytesWritten: number;
  blocksWritten: number;
  blocksZeroed: number;
  verified: boolean;
  verifyMismatches: Array<{ start: number; length: number }>;
}

/**
 * Serves the connection to the source: `input` assembles what the socket
 * reads. The first frame out is the session's token (Join), which is what
 * makes the source's listener take this connection.
 */
export async function serveSource(socket: net.Socket, input: FrameAssembler, o: StreamOptions, disk: DiskEndpoint | undefined): Promise<ReceiveResult> {
  socket.setNoDelay(true);
  const writer = new FrameWriter(socket);
  const { blockSize, size, resumeFrom } = o;
  const blockCount = Math.ceil(size / blockSize);
  const threads = o.hashThreads ?? Math.min(4, cpus().length);
  // Hashing threads start only when the destination must be read (no
  // remembered digests) or read back (verification).
  let hashPool: HashPool | undefined;
  const pool = (): HashPool => (hashPool ??= HashPool.create(blockSize, 16 + threads * 2, threads));
  const res: ReceiveResult = { directIo: false, bytesWritten: 0, blocksWritten: 0, blocksZeroed: 0, verified: false, verifyMismatches: [] };

  /** The destination's digests as streamed to the source. */
  const own = new DigestTable(blockCount);
  /** What the destination holds once this run is done (unknown where nobody hashed it): the next run's digest cache. */
  const after = new DigestTable(blockCount);
  let hello: SenderHello | undefined;
  let applied = resumeFrom;
  let zeroRun: { start: number; length: number } | undefined;
  let ended = false;
  let verdict: ((v: VerifyVerdict) => void) | undefined;
  let earlyVerdict: VerifyVerdict | undefined;
  const queue: PooledFrame[] = [];
  let working = false;
  let failure: Error | undefined;
  let busyMs = 0;
  let busySince = performance.now();

  let finish!: (r: ReceiveResult) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<ReceiveResult>((a, b) => {
    finish = a;
    fail = b;
  });
  const failWith = (e: Error): void => {
    failure ??= e;
    socket.destroy();
  };

  const flushZeros = async (): Promise<void> => {
    if (zeroRun && disk) {
      const r = zeroRun;
      zeroRun = undefined;
      await disk.zeroRange(r.start, r.length);
    }
  };
  // Several block writes run at once; each is tracked until it completes.
  const inflight = new Map<number, Promise<void>>();
  const MAX_INFLIGHT = 4;
  const settleWrites = async (): Promise<void> => {
    await Promise.all(inflight.values());
  };
  // Blocks below the watermark are applied (a pending zero run or a running write is not yet).
  const watermark = (): number => {
    let mark = zeroRun ? Math.floor(zeroRun.start / blockSize) : applied;
    for (const i of inflight.keys()) mark = Math.min(mark, i);
    return mark;
  };
  const checkpointer = disk
    ? new Checkpointer(disk, {
        destination: o.path,
        sourceId: o.sourceId,
        size,
        blockSize,
        durableFrom: o.durableFrom,
        writesSurviveProcessExit: disk.writesSurviveProcessExit,
        onRecorded: async (mark) => {
          const now = performance.now();
          const load: ReceiverLoad = { busy: Math.min(1, busyMs / Math.max(1, now - busySince)) };
          busyMs = 0;
          busySince = now;
          if (!socket.destroyed) await writer.send(FrameType.Ack, mark, Buffer.from(JSON.stringify(load)));
        },
        onError: failWith,
      })
    : undefined;
  /** Records everything applied so far (disconnect): written, and so safe from a crash of the agents. */
  const checkpointNow = async (): Promise<void> => {
    if (!checkpointer || o.dryRun || !hello) return;
    await checkpointer.settle();
    await settleWrites().catch(() => undefined);
    await flushZeros();
    await checkpointer.recordNow(watermark(), false);
  };

  const sendDigest = (type: typeof FrameType.Hash | typeof FrameType.VerifyHash, b: { index: number; zero: boolean; digest?: Buffer }): Promise<void> =>
    b.zero || !b.digest ? writer.send(type, b.index, undefined, FrameFlag.ZeroBlock) : writer.send(type, b.index, b.digest);

  const streamHashes = async (): Promise<void> => {
    if (!disk) {
      // Missing destination in a dry run: everything reads as zeros.
      for (let i = resumeFrom; i < blockCount; i++) {
        own.set(i, undefined);
        await writer.send(FrameType.Hash, i, undefined, FrameFlag.ZeroBlock);
      }
      return;
    }
    const known = o.known;
    const toRead = (i: number): boolean => !known?.has(i);
    let reader: AsyncGenerator<BlockState> | undefined;
    for (let i = resumeFrom; i < blockCount; i++) {
      if (socket.destroyed) break;
      let b: { index: number; zero: boolean; digest?: Buffer };
      if (!toRead(i)) {
        // Known digests go out a thousand to a frame.
        const run: Array<Buffer | undefined> = [];
        for (let k = i; k < blockCount && run.length < 1024 && !toRead(k); k++) {
          const d = known!.isZero(k) ? undefined : known!.digest(k);
          own.set(k, d);
          run.push(d);
        }
        await writer.send(FrameType.Hashes, i, encodeHashes(run));
        i += run.length - 1;
        continue;
      } else {
        reader ??= readBlocks({
          disk,
          pool: pool(),
          blockSize,
          dataBlocks: blocksWithData(await disk.dataRanges(), size, blockSize),
          from: i,
          to: blockCount,
          window: threads * 2 + 2,
          wanted: toRead,
        });
        const next = await reader.next();
        if (next.done || next.value.index !== i) throw new FerryError('INTERNAL', `Block reader out of step at block ${i}`);
        const s = next.value;
        if (!s.zero) pool().release(s.slot);
        b = s.zero ? { index: i, zero: true } : { index: i, zero: false, digest: s.digest };
      }
      own.set(i, b.zero ? undefined : b.digest);
      await sendDigest(FrameType.Hash, b);
    }
    await reader?.return(undefined);
  };

  /**
   * Verification reads back what this session wrote (data and zeroed
   * blocks) plus what earlier, resumed sessions wrote; every other block
   * was just compared equal by hashing the destination's own disk.
   */
  const touched = new Uint8Array(blockCount);
  /**
   * On a direct disk a written block can be read back from the device as
   * soon as its write completes, so the verification's reads overlap the
   * stream instead of following it. Only where writes are few (a re-sync)
   * and the disk has nothing else to do, one block at a time: in a full
   * copy, reads mixed in with the writes slowed it down more than reading
   * everything back at the end. The rest is read back at the end.
   */
  const readEarly = new Uint8Array(blockCount);
  let earlyRead: Promise<void> | undefined;
  let earlyBuffer: Uint8Array | undefined;
  const readBackSoon = (index: number): void => {
    const mostlyUnchanged = res.blocksWritten * 8 <= applied - resumeFrom;
    if (earlyRead || inflight.size > 0 || !mostlyUnchanged || !disk?.direct || !hello?.verify) return;
    const view = (earlyBuffer ??= new Uint8Array(alignedSharedMemory(blockSize), 0, blockSize)).subarray(0, Math.min(blockSize, size - index * blockSize));
    earlyRead = (async () => {
      await readBlock(disk.blockSource(true), view, index * blockSize);
      const digest = isAllZero(view) ? undefined : xxh128(view);
      after.set(index, digest);
      readEarly[index] = 1;
      await sendDigest(FrameType.VerifyHash, { index, zero: !digest, digest });
    })()
      .catch((e: Error) => {
        if (!socket.destroyed) failWith(e);
      })
      .finally(() => (earlyRead = undefined));
  };
  const verifyReadBack = async (fromDisk: boolean): Promise<void> => {
    if (!disk) return;
    // Read back what is on disk now, not what the page cache remembers:
    // direct reads do that by themselves.
    if (fromDisk && !disk.direct) {
      await disk.reopen();
      await disk.dropCache();
    }
    const wanted = (i: number): boolean => (i < resumeFrom || touched[i] === 1) && readEarly[i] === 0;
    let count = 0;
    for (let i = 0; i < blockCount; i++) if (wanted(i)) count++;
    // A few blocks are read and hashed right here: mapping the disk and
    // starting hashing threads would take longer than that.
    const few = count <= 64;
    const using = few && !hashPool ? HashPool.create(blockSize, 4, 0) : pool();
    const dataBlocks = few ? new Uint8Array(blockCount).fill(1) : blocksWithData(await disk.dataRanges(), size, blockSize);
    for await (const b of readBlocks({ disk, pool: using, blockSize, dataBlocks, from: 0, to: blockCount, window: few ? 4 : threads * 2 + 2, wanted, fromDevice: fromDisk })) {
      if (!b.zero) using.release(b.slot);
      after.set(b.index, b.zero ? undefined : b.digest);
      await sendDigest(FrameType.VerifyHash, b);
    }
  };

  const end = async (e: SenderEnd): Promise<void> => {
    ended = true;
    trace('receive: end of stream');
    if (!o.dryRun && disk) {
      applied = blockCount;
      await checkpointer?.settle();
      await settleWrites();
      await earlyRead;
      await flushZeros();
      if (e.fsync) await disk.flush();
      trace('receive: flushed');
      const corrupt = process.env.FERRY_SYNC_CORRUPT_BLOCK; // fault injection: proves verification reads the disk
      if (corrupt) {
        await disk.write(Buffer.alloc(Math.min(blockSize, size - Number(corrupt) * blockSize), 0xee), Number(corrupt) * blockSize);
        await disk.flush();
        readEarly[Number(corrupt)] = 0;
      }
    }
    if (e.verify && !o.dryRun) {
      await verifyReadBack(e.fsync);
      trace('receive: read back');
      // The verdict may already be here when the source had nothing to wait for.
      const v = earlyVerdict ?? (await new Promise<VerifyVerdict>((r) => (verdict = r)));
      res.verified = v.ok;
      res.verifyMismatches = v.mismatches;
    }
    if (!o.dryRun) {
      await removeCheckpoint(o.path);
      // Remembered only when the copy is durable and, if verified, proven.
      const trusted = e.fsync && (!e.verify || res.verified);
      if (disk && trusted && disk.info.kind === 'file') await saveDigestCache(o.path, blockSize, after);
    }
    trace('receive: digests remembered');
    // As it ended: a filesystem may have refused direct writes half-way.
    res.directIo = (disk?.direct ?? false) && !o.dryRun;
    await writer.sendJson(FrameType.Done, {});
    socket.end();
    finish(res);
  };

  const apply = async (f: PooledFrame): Promise<void> => {
    switch (f.type) {
      case FrameType.Hello: {
        hello = JSON.parse(f.payload.toString()) as SenderHello;
        if (hello.token !== o.token) throw new FerryError('AGENT_ERROR', 'Sync connection refused: wrong session token');
        if (hello.size !== size || hello.blockSize !== blockSize) throw new FerryError('INTERNAL', 'Sync connection refused: the source announced another size or block size');
        // From the first write on, the remembered digests no longer describe the disk.
        if (!o.dryRun) await dropDigestCache(o.path);
        await writer.sendJson(FrameType.Ready, { startBlock: resumeFrom });
        void streamHashes().catch(failWith);
        return;
      }
      case FrameType.SourceDigest:
        after.set(f.index, f.payload);
        return;
      case FrameType.Data: {
        if (!disk || o.dryRun) return;
        const t0 = performance.now();
        await flushZeros();
        let length: number;
        let writing: Promise<void>;
        if (f.flags & FrameFlag.Compressed) {
          const bytes = decompress(f.payload);
          f.release();
          writing = disk.write(bytes, f.index * blockSize);
          length = bytes.length;
        } else {
          // The payload's buffer goes back to the pool once written.
          writing = disk.writev(f.parts, f.index * blockSize).finally(() => f.release());
          length = f.parts.reduce((n, p) => n + p.length, 0);
        }
        const index = f.index;
        inflight.set(
          index,
          writing.then(
            () => {
              inflight.delete(index);
              readBackSoon(index);
            },
            (e: Error) => {
              inflight.delete(index);
              failWith(e);
            },
          ),
        );
        if (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight.values());
        busyMs += performance.now() - t0;
        res.bytesWritten += length;
        res.blocksWritten++;
        touched[index] = 1;
        applied = index + 1;
        break;
      }
      case FrameType.Zero: {
        const start = f.index * blockSize;
        const length = Math.min(blockSize, size - start);
        if (zeroRun && zeroRun.start + zeroRun.length === start) zeroRun.length += length;
        else {
          await flushZeros();
          zeroRun = { start, length };
        }
        res.blocksZeroed++;
        touched[f.index] = 1;
        after.set(f.index, undefined);
        applied = f.index + 1;
        break;
      }
      case FrameType.Same: {
        const count = f.payload.length >= 4 ? f.payload.readUInt32BE(0) : 1;
        for (let i = f.index; i < f.index + count; i++) after.set(i, own.isZero(i) ? undefined : own.digest(i));
        applied = f.index + count;
        break;
      }
      case FrameType.End:
        await end(JSON.parse(f.payload.toString()) as SenderEnd);
        return;
      case FrameType.Verdict:
        return; // handled as it arrives
      default:
        throw new FerryError('INTERNAL', `Unexpected sync frame type ${f.type}`);
    }
    if (!o.dryRun && hello) checkpointer?.maybeRecord(watermark);
  };

  const work = async (): Promise<void> => {
    if (working) return;
    working = true;
    try {
      while (queue.length) {
        const f = queue.shift()!;
        if (queue.length < 64 && socket.isPaused()) socket.resume();
        await apply(f);
        if (f.type !== FrameType.Data) f.release(); // a Data frame's goes back once written
      }
    } catch (e) {
      failWith(e as Error);
    } finally {
      working = false;
    }
  };

  input.onFrame = (f) => {
    // Verdicts must not wait behind the End frame that is awaiting them.
    if (f.type === FrameType.Verdict) {
      earlyVerdict = JSON.parse(f.payload.toString()) as VerifyVerdict;
      verdict?.(earlyVerdict);
      return;
    }
    queue.push(f);
    if (queue.length > 256 && !socket.isPaused()) socket.pause();
    void work();
  };
  // Only now, with frames handled: the source says nothing before this.
  void writer.send(FrameType.Join, 0, Buffer.from(o.token)).catch(() => undefined); // a failure shows as the socket closing
  socket.on('error', () => undefined);
  socket.on('close', () => {
    void (async () => {
      while (working) await new Promise((r) => setTimeout(r, 10));
      if (ended && !failure) return;
      // Dropped mid-way: record what was applied so --resume skips it.
      try {
        if (!failure) await checkpointNow();
      } catch {
        // the disk itself failed: the last recorded checkpoint stands
      }
      const e = failure
        ? asFerryError(failure)
        : new FerryError('ABORTED', `Sync into "${o.path}" interrupted: the source disconnected after ${applied} of ${blockCount} blocks`, {
            hint: 'run the same command again with --resume to continue from the last checkpoint',
          });
      fail(e);
    })();
  });
  try {
    return await done;
  } finally {
    await hashPool?.close();
  }
}
