/**
 * The destination's side of one sync connection, composed of parts that
 * each own their state: the frame loop (frame-loop.ts) applies the
 * source's frames in order; the digest streamer (digest-streamer.ts) sends
 * the destination's digests; the block writer (block-writer.ts) writes
 * what differs; the checkpointer records resume points; the read-back
 * verifier (read-back-verifier.ts) reads written blocks back. This file
 * handles the session's messages (Hello, Same, End, Verdict) and how it
 * ends: done, or dropped with a checkpoint for --resume.
 */
import type * as net from 'node:net';
import type { DiskEndpoint } from '../storage/endpoint.js';
import { FerryError, asFerryError } from '../util/errors.js';
import { trace } from '../util/trace.js';
import { BlockGeometry } from './block-geometry.js';
import { BlockWriter } from './block-writer.js';
import { removeCheckpoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';
import { dropDigestCache, saveDigestCache } from './digest-cache.js';
import { DigestStreamer } from './digest-streamer.js';
import { DigestTable } from './digest-table.js';
import type { FrameAssembler, PooledFrame } from './frame-assembler.js';
import { FrameLoop } from './frame-loop.js';
import { ConnectionClosedError, FrameWriter } from './frame-writer.js';
import { defaultHashThreads } from './hash-pool.js';
import { LazyHashPool } from './lazy-hash-pool.js';
import { FrameType, frameJson, type ReceiverLoad, type SenderEnd, type SenderHello, type VerifyVerdict } from './protocol.js';
import { ReadBackVerifier } from './read-back-verifier.js';

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
 * makes the source's listener take this connection. `disk` is undefined
 * only in a dry run into a missing destination.
 */
export function serveSource(socket: net.Socket, input: FrameAssembler, options: StreamOptions, disk: DiskEndpoint | undefined): Promise<ReceiveResult> {
  return new SourceConnection(socket, input, options, disk).serve();
}

class SourceConnection {
  private readonly geometry: BlockGeometry;
  private readonly writer: FrameWriter;
  /** The destination's digests as streamed to the source. */
  private readonly destinationDigests: DigestTable;
  /** What the destination holds once this run is done (unknown where nobody hashed it): the next run's digest cache. */
  private readonly resultDigests: DigestTable;
  /** Hashing threads start only when the destination must be read or read back. */
  private readonly pool: LazyHashPool;
  private readonly blocks: BlockWriter;
  private readonly streamer: DigestStreamer;
  private readonly verifier: ReadBackVerifier | undefined;
  private readonly checkpointer: Checkpointer | undefined;
  private readonly loop: FrameLoop;
  private hello: SenderHello | undefined;
  private ended = false;
  private failure: Error | undefined;
  /** The source's verdict on the verification; it may come before the End frame is done. */
  private readonly verdict: Promise<VerifyVerdict>;
  private deliverVerdict!: (verdict: VerifyVerdict) => void;
  private finish!: (result: ReceiveResult) => void;
  private fail!: (e: Error) => void;
  private readonly done = new Promise<ReceiveResult>((resolve, reject) => {
    this.finish = resolve;
    this.fail = reject;
  });

  constructor(
    private readonly socket: net.Socket,
    private readonly input: FrameAssembler,
    private readonly options: StreamOptions,
    private readonly disk: DiskEndpoint | undefined,
  ) {
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket);
    this.geometry = new BlockGeometry(options.size, options.blockSize);
    this.destinationDigests = new DigestTable(this.geometry.count);
    this.resultDigests = new DigestTable(this.geometry.count);
    const threads = options.hashThreads ?? defaultHashThreads();
    const window = threads * 2 + 2;
    this.pool = new LazyHashPool(options.blockSize, 16 + threads * 2, threads);
    this.verdict = new Promise((resolve) => (this.deliverVerdict = resolve));
    const closed = (): boolean => socket.destroyed;
    const { writer, geometry, pool, destinationDigests, resultDigests } = this;
    this.streamer = new DigestStreamer({ disk, geometry, writer, known: options.known, destinationDigests, pool, window, closed });
    this.blocks = new BlockWriter(disk, geometry, options.resumeFrom, {
      onWritten: (index) => {
        if (this.hello?.verify) this.verifier?.readSoon(index);
      },
      onError: (e) => this.failWith(e),
    });
    const blocks = this.blocks;
    const onError = (e: Error): void => this.failWith(e);
    this.verifier = disk && new ReadBackVerifier({ disk, geometry, resumeFrom: options.resumeFrom, blocks, writer, resultDigests, pool, window, closed, onError });
    this.checkpointer = disk && this.checkpointerFor(disk);
    this.loop = new FrameLoop(socket, (frame) => this.apply(frame), onError);
  }

  async serve(): Promise<ReceiveResult> {
    this.input.onFrame = (frame) => this.onFrame(frame);
    // Only now, with frames handled: the source says nothing before this.
    void this.writer.send(FrameType.Join, 0, Buffer.from(this.options.token)).catch(() => undefined); // a failure shows as the socket closing
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => void this.onClose());
    try {
      return await this.done;
    } finally {
      await this.pool.close();
    }
  }

  private checkpointerFor(disk: DiskEndpoint): Checkpointer {
    const { path, sourceId, size, blockSize, durableFrom } = this.options;
    return new Checkpointer(disk, {
      destination: path,
      sourceId,
      size,
      blockSize,
      durableFrom,
      writesSurviveProcessExit: disk.writesSurviveProcessExit,
      onRecorded: async (mark) => {
        const load: ReceiverLoad = { busy: this.blocks.takeBusyShare() };
        if (!this.socket.destroyed) await this.writer.send(FrameType.Ack, mark, Buffer.from(JSON.stringify(load)));
      },
      onError: (e) => this.failWith(e),
    });
  }

  private failWith(e: Error): void {
    this.failure ??= e;
    this.socket.destroy();
  }

  private onFrame(frame: PooledFrame): void {
    // Verdicts must not wait behind the End frame that is awaiting them.
    if (frame.type === FrameType.Verdict) this.deliverVerdict(frameJson<VerifyVerdict>(frame));
    else this.loop.push(frame);
  }

  private async apply(frame: PooledFrame): Promise<void> {
    const dryRun = this.options.dryRun;
    switch (frame.type) {
      case FrameType.Hello:
        return this.start(frameJson<SenderHello>(frame));
      case FrameType.SourceDigest:
        this.resultDigests.set(frame.index, frame.payload);
        return;
      case FrameType.Data:
        if (!this.disk || dryRun) return;
        await this.blocks.write(frame);
        break;
      case FrameType.Zero:
        await this.blocks.zero(frame.index);
        this.resultDigests.set(frame.index, undefined);
        break;
      case FrameType.Same:
        this.same(frame);
        break;
      case FrameType.End:
        return this.end(frameJson<SenderEnd>(frame));
      default:
        throw new FerryError('INTERNAL', `Unexpected sync frame type ${frame.type}`, { hint: 'use the same ferry version on both hosts' });
    }
    if (!dryRun && this.hello) this.checkpointer?.maybeRecord(() => this.blocks.watermark());
  }

  /** The source's Hello: checks it, answers Ready, and starts streaming the destination's digests. */
  private async start(hello: SenderHello): Promise<void> {
    const { token, size, blockSize, dryRun, path, resumeFrom } = this.options;
    this.hello = hello;
    if (hello.token !== token) {
      throw new FerryError('AGENT_ERROR', 'Sync connection refused: wrong session token', { hint: 'start the sync again from the controller' });
    }
    if (hello.size !== size || hello.blockSize !== blockSize) {
      throw new FerryError('INTERNAL', 'Sync connection refused: the source announced another size or block size', { hint: 'use the same ferry version on both hosts' });
    }
    // From the first write on, the remembered digests no longer describe the disk.
    if (!dryRun) await dropDigestCache(path);
    await this.writer.sendJson(FrameType.Ready, { startBlock: resumeFrom });
    void this.streamer.stream(resumeFrom).catch((e: Error) => this.failWith(e));
  }

  /** Blocks equal on both sides: the destination keeps what it has. */
  private same(frame: PooledFrame): void {
    const count = frame.payload.length >= 4 ? frame.payload.readUInt32BE(0) : 1;
    const { destinationDigests, resultDigests } = this;
    for (let i = frame.index; i < frame.index + count; i++) resultDigests.set(i, destinationDigests.isZero(i) ? undefined : destinationDigests.digest(i));
    this.blocks.skip(frame.index, count);
  }

  /** The End frame: completes the writes, verifies, remembers the digests, and says Done. */
  private async end(senderEnd: SenderEnd): Promise<void> {
    const { dryRun } = this.options;
    this.ended = true;
    trace('receive: end of stream');
    if (!dryRun && this.disk) await this.completeWrites(this.disk, senderEnd.fsync);
    const verdict = senderEnd.verify && !dryRun ? await this.verify(senderEnd.fsync) : undefined;
    if (!dryRun) await this.remember(senderEnd, verdict?.ok ?? false);
    trace('receive: digests remembered');
    const result: ReceiveResult = {
      // As it ended: a filesystem may have refused direct writes half-way.
      directIo: (this.disk?.direct ?? false) && !dryRun,
      bytesWritten: this.blocks.bytesWritten,
      blocksWritten: this.blocks.blocksWritten,
      blocksZeroed: this.blocks.blocksZeroed,
      verified: verdict?.ok ?? false,
      verifyMismatches: verdict?.mismatches ?? [],
    };
    await this.writer.sendJson(FrameType.Done, {});
    this.socket.end();
    this.finish(result);
  }

  private async completeWrites(disk: DiskEndpoint, fsync: boolean): Promise<void> {
    this.blocks.endOfStream();
    await this.checkpointer?.settle();
    await this.blocks.settle();
    await this.verifier?.settle();
    await this.blocks.flushZeros();
    if (fsync) await disk.flush();
    trace('receive: flushed');
    await this.injectCorruption(disk);
  }

  /** Fault injection for tests (FERRY_SYNC_CORRUPT_BLOCK): proves the verification reads the disk. */
  private async injectCorruption(disk: DiskEndpoint): Promise<void> {
    const corrupt = process.env.FERRY_SYNC_CORRUPT_BLOCK;
    if (!corrupt) return;
    const index = Number(corrupt);
    await disk.write(Buffer.alloc(this.geometry.lengthOf(index), 0xee), this.geometry.offsetOf(index));
    await disk.flush();
    this.verifier?.forget(index);
  }

  private async verify(fromDisk: boolean): Promise<VerifyVerdict> {
    await this.verifier?.readBack(fromDisk);
    trace('receive: read back');
    // The verdict may already be here when the source had nothing to wait for.
    return this.verdict;
  }

  /** Drops the checkpoint and, when the copy is durable and (if verified) proven, remembers its digests. */
  private async remember(senderEnd: SenderEnd, verified: boolean): Promise<void> {
    await removeCheckpoint(this.options.path);
    const trusted = senderEnd.fsync && (!senderEnd.verify || verified);
    if (this.disk && trusted && this.disk.info.kind === 'file') await saveDigestCache(this.options.path, this.options.blockSize, this.resultDigests);
  }

  /** The socket closed: done, or dropped mid-way (then what was applied is recorded for --resume). */
  private async onClose(): Promise<void> {
    await this.loop.whenIdle();
    if (this.ended && !this.failure) return;
    try {
      if (!this.failure || this.failure instanceof ConnectionClosedError) await this.checkpointNow();
    } catch {
      // the disk itself failed: the last recorded checkpoint stands
    }
    const { path } = this.options;
    // Answering a frame as the source went fails too: the source's going is the error.
    const failed = this.failure && !(this.failure instanceof ConnectionClosedError) ? this.failure : undefined;
    const e = failed
      ? asFerryError(failed)
      : new FerryError('ABORTED', `Sync into "${path}" interrupted: the source disconnected after ${this.blocks.applied} of ${this.geometry.count} blocks`, {
          hint: 'run the same command again with --resume to continue from the last checkpoint',
        });
    this.fail(e);
  }

  /** Records everything applied so far: written, and so safe from a crash of the agents. */
  private async checkpointNow(): Promise<void> {
    if (!this.checkpointer || this.options.dryRun || !this.hello) return;
    await this.checkpointer.settle();
    await this.blocks.settle().catch(() => undefined);
    await this.blocks.flushZeros();
    await this.checkpointer.recordNow(this.blocks.watermark(), false);
  }
}
