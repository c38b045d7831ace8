/**
 * The destination end of a sync, run by the destination host's agent: checks
 * and opens (or creates) the disk, listens for the source agent, streams its
 * own block hashes, applies the blocks that differ, keeps a durable
 * checkpoint, and at the end reads everything back from disk for the
 * verification.
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { dirname } from 'node:path';
import { cpus } from 'node:os';
import { decompress } from 'zstd-napi';
import { blocksWithData } from '../storage/allocation.js';
import { openDisk, type DiskEndpoint } from '../storage/endpoint.js';
import { createImage, formatForNewImage, inspectDisk, type DiskInfo } from '../storage/image-info.js';
import { createLv, parseLvPath } from '../storage/lvm.js';
import { describeUsers, findDiskUsers, isBusy } from '../storage/usage.js';
import { FerryError, asFerryError } from '../util/errors.js';
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from './checkpoint.js';
import { readBlocks } from './block-reader.js';
import { HashPool } from './hash-pool.js';
import { FrameFlag, FrameParser, FrameType, FrameWriter, type Frame, type SenderHello, type VerifyVerdict } from './protocol.js';

export interface ReceiveOptions {
  path: string;
  /** Address to listen on (the host's inventory address). */
  address: string;
  sourceSize: number;
  sourceFormat: string;
  /** Format for a destination image that must be created (default: from its name, else the source's). */
  createFormat?: string;
  sourceId: string;
  blockSize: number;
  resume: boolean;
  dryRun: boolean;
  force: boolean;
  /** Volume group to create a missing LV in. */
  createLv?: string;
  hashThreads?: number;
  /** Checkpoint at least this often (bytes written). */
  checkpointBytes?: number;
}

export interface ReceivePlan {
  port: number;
  token: string;
  created: boolean;
  format: string;
  size: number;
  /** Blocks a previous run confirmed (resume), 0 otherwise. */
  resumeFrom: number;
}

export interface ReceiveResult {
  bytesWritten: number;
  blocksWritten: number;
  blocksZeroed: number;
  verified: boolean;
  verifyMismatches: Array<{ start: number; length: number }>;
}

export interface ReceiveSession {
  plan: ReceivePlan;
  result: Promise<ReceiveResult>;
  /** Stops listening and closes the disk (controller gone, Ctrl-C). */
  cancel(): Promise<void>;
}

/** Checks the destination, prepares it and starts listening; nothing is written before the source connects. */
export async function startReceive(o: ReceiveOptions): Promise<ReceiveSession> {
  const info = await inspectDisk(o.path);
  let created = false;
  let disk: DiskEndpoint | undefined;
  let target: DiskInfo = info;
  if (info.exists) {
    const users = await findDiskUsers(o.path);
    if (isBusy(users) && !o.force) {
      throw new FerryError('IN_USE', `Cannot write to "${o.path}": it is ${describeUsers(users)}`, {
        hint: 'unmount it or stop the VM using it first; --force overrides this check (and risks corrupting it)',
        details: { ...users },
      });
    }
    if (info.size! < o.sourceSize) {
      throw new FerryError('TARGET_TOO_SMALL', `Cannot sync into "${o.path}": it holds ${info.size} bytes, the source ${o.sourceSize}`, {
        hint: 'grow the destination (qemu-img resize, lvextend) or name a new path to create',
        details: { destinationSize: info.size, sourceSize: o.sourceSize },
      });
    }
  } else if (!o.dryRun) {
    const lv = parseLvPath(o.path);
    if (o.createLv !== undefined) {
      if (!lv || lv.vg !== o.createLv) {
        throw new FerryError('USAGE', `Cannot create "${o.path}" with --create-lv ${o.createLv}: the path must be /dev/${o.createLv}/NAME`, {
          hint: `name the destination /dev/${o.createLv}/LV`,
        });
      }
      await createLv(lv.vg, lv.lv, o.sourceSize);
    } else if (lv || dirname(o.path) === '/dev') {
      throw new FerryError('NOT_FOUND', `Cannot sync into "${o.path}": no such device`, {
        hint: lv ? `pass --create-lv ${lv.vg} to create the logical volume` : 'check the device path',
      });
    } else {
      await createImage({ path: o.path, format: formatForNewImage(o.path, o.sourceFormat, o.createFormat), sizeBytes: o.sourceSize });
    }
    created = true;
    target = await inspectDisk(o.path);
  }
  if (target.exists) disk = await openDisk(target, !o.dryRun);

  let resumeFrom = 0;
  const blockCount = Math.ceil(o.sourceSize / o.blockSize);
  if (o.resume && !created && !o.dryRun) {
    const c = await loadCheckpoint(o.path);
    if (c && c.sourceId === o.sourceId && c.size === o.sourceSize && c.blockSize === o.blockSize) resumeFrom = Math.min(c.confirmedBlocks, blockCount);
  }

  const token = randomBytes(16).toString('hex');
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(new FerryError('UNREACHABLE', `Cannot listen for the sync on ${o.address}: ${e.message}`, { hint: "check the host's address in the inventory" })),
    );
    server.listen(0, o.address, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const plan: ReceivePlan = { port, token, created, format: target.format ?? o.sourceFormat, size: target.size ?? o.sourceSize, resumeFrom };

  let active: net.Socket | undefined;
  let rejectWaiting: ((e: Error) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const result = new Promise<ReceiveResult>((resolve, reject) => {
    rejectWaiting = reject;
    timer = setTimeout(() => {
      reject(new FerryError('UNREACHABLE', `No source connected to ${o.address}:${port} within 60 s`, { hint: 'check that the source host can reach this address' }));
    }, 60_000);
    server.on('connection', (socket) => {
      clearTimeout(timer);
      server.close(); // one source per session
      active = socket;
      serveSource(socket, o, disk, token, resumeFrom).then(resolve, reject);
    });
  }).finally(async () => {
    clearTimeout(timer);
    server.close();
    await disk?.close();
  });
  result.catch(() => undefined);

  return {
    plan,
    result,
    cancel: async () => {
      server.close();
      if (active) {
        // Dropping the stream makes the session checkpoint what it applied; wait for that.
        active.destroy();
      } else {
        rejectWaiting?.(new FerryError('ABORTED', `Sync into "${o.path}" cancelled before the source connected`));
      }
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}

async function serveSource(socket: net.Socket, o: ReceiveOptions, disk: DiskEndpoint | undefined, token: string, resumeFrom: number): Promise<ReceiveResult> {
  socket.setNoDelay(true);
  const writer = new FrameWriter(socket);
  const blockSize = o.blockSize;
  const size = o.sourceSize;
  const blockCount = Math.ceil(size / blockSize);
  const threads = o.hashThreads ?? Math.min(4, cpus().length);
  const pool = HashPool.create(blockSize, 16 + threads * 2, threads);
  const res: ReceiveResult = { bytesWritten: 0, blocksWritten: 0, blocksZeroed: 0, verified: false, verifyMismatches: [] };

  let hello: SenderHello | undefined;
  let applied = resumeFrom;
  let zeroRun: { start: number; length: number } | undefined;
  let sinceCheckpoint = 0;
  let lastCheckpoint = performance.now();
  let ended = false;
  let verdict: ((v: VerifyVerdict) => void) | undefined;
  let earlyVerdict: VerifyVerdict | undefined;
  const queue: Frame[] = [];
  let working = false;
  let failure: Error | undefined;

  let finish!: (r: ReceiveResult) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<ReceiveResult>((a, b) => {
    finish = a;
    fail = b;
  });

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
  let checkpointing: Promise<void> | undefined;
  const saveAt = async (mark: number): Promise<void> => {
    await saveCheckpoint({
      version: 1,
      destination: o.path,
      sourceId: o.sourceId,
      size,
      blockSize,
      confirmedBlocks: mark,
      updatedAt: new Date().toISOString(),
    });
    if (!socket.destroyed) await writer.send(FrameType.Ack, mark);
  };
  /**
   * Durable checkpoint without stalling the stream: fdatasync covers every
   * write completed before it starts, so the watermark taken then is safe
   * to record once it returns, while later blocks keep being written.
   */
  const checkpointInBackground = (): void => {
    if (!disk || o.dryRun || !hello || checkpointing) return;
    const mark = watermark();
    sinceCheckpoint = 0;
    lastCheckpoint = performance.now();
    checkpointing = disk
      .flush()
      .then(() => saveAt(mark))
      .catch((e: Error) => {
        failure ??= e;
        socket.destroy();
      })
      .finally(() => (checkpointing = undefined));
  };
  /** Synchronous checkpoint of everything applied (end of stream, disconnect). */
  const checkpoint = async (): Promise<void> => {
    if (!disk || o.dryRun || !hello) return;
    await checkpointing;
    await settleWrites().catch(() => undefined);
    await flushZeros();
    await disk.flush();
    await saveAt(watermark());
  };

  const streamHashes = async (): Promise<void> => {
    if (!disk) {
      // Missing destination in a dry run: everything reads as zeros.
      for (let i = resumeFrom; i < blockCount; i++) await writer.send(FrameType.Hash, i, undefined, FrameFlag.ZeroBlock);
      return;
    }
    const dataBlocks = blocksWithData(await disk.dataRanges(), size, blockSize);
    for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks, from: resumeFrom, to: blockCount, window: threads * 2 + 2 })) {
      if (socket.destroyed) {
        if (!b.zero) pool.release(b.slot);
        return;
      }
      if (b.zero) await writer.send(FrameType.Hash, b.index, undefined, FrameFlag.ZeroBlock);
      else {
        pool.release(b.slot);
        await writer.send(FrameType.Hash, b.index, b.digest);
      }
    }
  };

  /**
   * Verification reads back what this session wrote (data and zeroed
   * blocks) plus what earlier, resumed sessions wrote; every other block
   * was just compared equal by hashing the destination's own disk.
   */
  const touched = new Uint8Array(blockCount);
  const verifyReadBack = async (): Promise<void> => {
    if (!disk) return;
    // Read back what is on disk now, not what the page cache remembers.
    await disk.reopen();
    await disk.dropCache();
    const dataBlocks = blocksWithData(await disk.dataRanges(), size, blockSize);
    const wanted = (i: number): boolean => i < resumeFrom || touched[i] === 1;
    for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks, from: 0, to: blockCount, window: threads * 2 + 2, wanted })) {
      if (b.zero) await writer.send(FrameType.VerifyHash, b.index, undefined, FrameFlag.ZeroBlock);
      else {
        pool.release(b.slot);
        await writer.send(FrameType.VerifyHash, b.index, b.digest);
      }
    }
  };

  const apply = async (f: Frame): Promise<void> => {
    switch (f.type) {
      case FrameType.Hello: {
        hello = JSON.parse(f.payload.toString()) as SenderHello;
        if (hello.token !== token) throw new FerryError('AGENT_ERROR', 'Sync connection refused: wrong session token');
        if (hello.size !== size || hello.blockSize !== blockSize) throw new FerryError('INTERNAL', 'Sync connection refused: the source announced another size or block size');
        await writer.sendJson(FrameType.Ready, { startBlock: resumeFrom });
        void streamHashes().catch((e: Error) => {
          failure ??= e;
          socket.destroy();
        });
        return;
      }
      case FrameType.Data: {
        if (!disk || o.dryRun) return;
        await flushZeros();
        let length: number;
        let writing: Promise<void>;
        if (f.flags & FrameFlag.Compressed) {
          const bytes = decompress(f.payload);
          writing = disk.write(bytes, f.index * blockSize);
          length = bytes.length;
        } else {
          writing = disk.writev(f.parts, f.index * blockSize);
          length = f.parts.reduce((n, p) => n + p.length, 0);
        }
        const index = f.index;
        inflight.set(
          index,
          writing.then(
            () => void inflight.delete(index),
            (e: Error) => {
              inflight.delete(index);
              failure ??= e;
              socket.destroy();
            },
          ),
        );
        if (inflight.size >= MAX_INFLIGHT) await Promise.race(inflight.values());
        res.bytesWritten += length;
        res.blocksWritten++;
        touched[f.index] = 1;
        sinceCheckpoint += length;
        applied = f.index + 1;
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
        applied = f.index + 1;
        break;
      }
      case FrameType.Same:
        applied = f.index + 1;
        break;
      case FrameType.End: {
        const { verify } = JSON.parse(f.payload.toString()) as { verify: boolean };
        ended = true;
        if (!o.dryRun && disk) {
          applied = blockCount;
          await checkpoint();
          const corrupt = process.env.FERRY_SYNC_CORRUPT_BLOCK; // fault injection: proves verification reads the disk
          if (corrupt) {
            await disk.write(Buffer.alloc(Math.min(blockSize, size - Number(corrupt) * blockSize), 0xee), Number(corrupt) * blockSize);
            await disk.flush();
          }
        }
        if (verify && !o.dryRun) {
          await verifyReadBack();
          // The verdict may already be here when the source had nothing to wait for.
          const v = earlyVerdict ?? (await new Promise<VerifyVerdict>((r) => (verdict = r)));
          res.verified = v.ok;
          res.verifyMismatches = v.mismatches;
        }
        if (!o.dryRun) await removeCheckpoint(o.path);
        await writer.sendJson(FrameType.Done, {});
        socket.end();
        finish(res);
        return;
      }
      case FrameType.Verdict:
        return; // handled as it arrives
      default:
        throw new FerryError('INTERNAL', `Unexpected sync frame type ${f.type}`);
    }
    if (sinceCheckpoint >= (o.checkpointBytes ?? 1 << 30) || performance.now() - lastCheckpoint > 2000) checkpointInBackground();
  };

  const work = async (): Promise<void> => {
    if (working) return;
    working = true;
    try {
      while (queue.length) {
        const f = queue.shift()!;
        if (queue.length < 64 && socket.isPaused()) socket.resume();
        await apply(f);
      }
    } catch (e) {
      failure ??= e as Error;
      socket.destroy();
    } finally {
      working = false;
    }
  };

  const parser = new FrameParser((f) => {
    // Verdicts must not wait behind the End frame that is awaiting them.
    if (f.type === FrameType.Verdict) {
      earlyVerdict = JSON.parse(f.payload.toString()) as VerifyVerdict;
      verdict?.(earlyVerdict);
      return;
    }
    queue.push(f);
    if (queue.length > 256 && !socket.isPaused()) socket.pause();
    void work();
  });
  socket.on('data', (d: Buffer) => parser.push(d));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    void (async () => {
      while (working) await new Promise((r) => setTimeout(r, 10));
      if (ended && !failure) return;
      // Dropped mid-way: make what was applied durable so --resume skips it.
      try {
        if (!failure && hello) await checkpoint();
      } catch {
        // the disk itself failed: the last periodic checkpoint stands
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
    await pool.close();
  }
}
