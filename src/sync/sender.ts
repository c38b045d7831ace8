/**
 * The source end of a sync, run by the source host's agent: reads and hashes
 * its disk while the destination does the same, and for every block sends
 * the bytes only when the destination's digest differs. Zero blocks (holes
 * in the allocation map, or read as all zeros) never carry bytes.
 *
 * Its parts: the listener that accepts the destination
 * (destination-listener.ts), the channel to it (destination-channel.ts),
 * the source's blocks from a head-start scan or the disk (source-blocks.ts),
 * the decision for each (send-loop.ts), and the comparison of what the
 * destination read back (source-verifier.ts).
 */
import { randomBytes } from 'node:crypto';
import type * as net from 'node:net';
import { inspectDisk, sameDisk, type DiskInfo } from '../storage/image-info.js';
import { FerryError } from '../util/errors.js';
import { trace } from '../util/trace.js';
import { BlockGeometry } from './block-geometry.js';
import { CompressionPolicy, type CompressMode } from './compression.js';
import { DestinationChannel } from './destination-channel.js';
import { acceptDestination, listen, portOf } from './destination-listener.js';
import { FrameType, type SenderEnd, type SenderHello, type VerifyVerdict } from './protocol.js';
import { SendLoop } from './send-loop.js';
import { sourceBlocks } from './source-blocks.js';
import { closeSourceDisk, openSourceDisk, type SourceDisk } from './source-disk.js';
import type { SourceScan } from './source-scan.js';
import { compareReadBack } from './source-verifier.js';
import { ProgressReporter, initialProgress, type ByteRange, type SendResult, type SyncProgress } from './sync-progress.js';

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
 */
export async function startSend(options: SendOptions, onProgress: (p: SyncProgress) => void): Promise<SendSession> {
  const scan = await usableScan(options);
  // A scan owns the source it opened: closing it closes both.
  const release = async (source?: SourceDisk): Promise<void> => {
    if (scan) await scan.close();
    else if (source) await closeSourceDisk(source);
  };
  let source: SourceDisk | undefined;
  let server: net.Server;
  try {
    source = await openSource(options, scan);
    server = await listen(options.address);
  } catch (e) {
    await release(source);
    throw e;
  }
  const token = randomBytes(16).toString('hex');
  const opened = source;
  const result = serveDestination(server, token, options, (socket) => new SourceSession(options, token, opened, scan, socket, onProgress).run()).finally(() => release(opened));
  result.catch(() => undefined); // the caller awaits it
  return { port: portOf(server), token, result };
}

/** The scan handed over, if it is of this source (same path, same disk, same block size); else it is closed. */
async function usableScan(options: SendOptions): Promise<SourceScan | undefined> {
  const scan = options.scan;
  if (!scan) return undefined;
  if (scan.info.path === options.path && (!options.info || sameDisk(scan.info, options.info)) && scan.source.blockSize === options.blockSize) return scan;
  await scan.close();
  return undefined;
}

async function openSource(options: SendOptions, scan: SourceScan | undefined): Promise<SourceDisk> {
  const info = scan?.info ?? (options.info?.path === options.path ? options.info : await inspectDisk(options.path));
  if (!info.exists) throw new FerryError('NOT_FOUND', `Cannot read source "${options.path}": not found`, { hint: 'check the source path' });
  trace('send: start');
  const source = scan?.source ?? (await openSourceDisk(info, options.blockSize, options.hashThreads));
  trace('send: disk open');
  return source;
}

/**
 * Waits for the destination, then runs `send` over its connection; aborting
 * drops the connection. The listener and the connection close either way.
 */
async function serveDestination(server: net.Server, token: string, options: SendOptions, send: (socket: net.Socket) => Promise<SendResult>): Promise<SendResult> {
  let socket: net.Socket | undefined;
  const abort = (): void => void socket?.destroy();
  try {
    socket = await acceptDestination(server, token, options.connectTimeoutMs ?? 60_000, options.signal);
    options.signal?.addEventListener('abort', abort);
    return await send(socket);
  } finally {
    options.signal?.removeEventListener('abort', abort);
    server.close();
    socket?.destroy();
  }
}

/** One send over the destination's connection: Hello, every block, End, the verification, Done. */
class SourceSession {
  private readonly startedAt = performance.now();
  private readonly geometry: BlockGeometry;
  private readonly progress: SyncProgress;
  private readonly channel: DestinationChannel;
  /** The run ends with a verification. */
  private readonly verify: boolean;

  constructor(
    private readonly options: SendOptions,
    private readonly token: string,
    private readonly source: SourceDisk,
    private readonly scan: SourceScan | undefined,
    socket: net.Socket,
    private readonly onProgress: (p: SyncProgress) => void,
  ) {
    this.geometry = new BlockGeometry(source.disk.size, options.blockSize);
    this.progress = initialProgress(this.geometry.size, this.geometry.count);
    this.verify = options.verify && !options.dryRun;
    this.channel = new DestinationChannel(socket, {
      blockCount: this.geometry.count,
      bandwidth: options.bandwidth,
      lostError: () => this.lostConnection(),
      onAck: (mark) => (this.progress.blocksConfirmed = mark),
      dropAfterBytes: Number(process.env.FERRY_SYNC_DROP_AFTER_BYTES ?? 0), // fault injection for tests
    });
  }

  async run(): Promise<SendResult> {
    const { options, geometry, progress, channel } = this;
    const hello: SenderHello = {
      token: this.token,
      size: geometry.size,
      blockSize: geometry.blockSize,
      sourceId: options.sourceId,
      resume: options.resume,
      dryRun: options.dryRun,
      verify: this.verify,
    };
    const { startBlock } = await channel.hello(hello);
    trace('send: destination ready');
    progress.blocksResumed = startBlock;
    progress.blocksConfirmed = startBlock;
    progress.bytesCompared = Math.min(geometry.size, startBlock * geometry.blockSize);
    const policy = new CompressionPolicy(options.compress, options.bandwidth);
    const refresh = (p: SyncProgress): void => {
      p.bytesSent = channel.bytesSent;
      p.compressing = policy.active;
    };
    const reporter = new ProgressReporter(progress, this.startedAt, refresh, this.onProgress);
    try {
      const dataBlocks = await this.source.dataBlocks;
      trace('send: source mapped');
      const loop = await this.compare(startBlock, dataBlocks, policy);
      await channel.send(FrameType.End, 0, Buffer.from(JSON.stringify({ verify: this.verify, fsync: options.fsync } satisfies SenderEnd)));
      const mismatches = this.verify ? await this.verifyCopy(startBlock, dataBlocks, loop) : [];
      trace('send: verified');
      await channel.whenDone();
      trace('send: done');
      progress.phase = 'done';
      progress.blocksConfirmed = geometry.count;
      reporter.report();
      return { ...progress, verified: this.verify && mismatches.length === 0, mismatches };
    } finally {
      reporter.stop();
    }
  }

  /** Decides and sends every block from `startBlock` on. */
  private async compare(startBlock: number, dataBlocks: Uint8Array, policy: CompressionPolicy): Promise<SendLoop> {
    const { options, source, geometry, channel, progress, scan } = this;
    const loop = new SendLoop({ geometry, dryRun: options.dryRun, verify: options.verify, pool: source.pool, channel, policy, progress });
    const destinationDigests = channel.destinationDigests;
    const arrived = (i: number): Promise<void> => channel.arrived(destinationDigests, i);
    await loop.run(sourceBlocks({ source, geometry, dataBlocks, startBlock, scan, destinationDigests, arrived, needsDigest: (i) => loop.needsDigest(i) }));
    trace('send: compared');
    return loop;
  }

  /** Compares what the destination read back (blocks this run or a resumed one wrote) and sends the verdict. */
  private async verifyCopy(startBlock: number, dataBlocks: Uint8Array, loop: SendLoop): Promise<ByteRange[]> {
    const { source, geometry, channel, progress, scan } = this;
    const written = (i: number): boolean => i < startBlock || loop.sent(i);
    progress.phase = 'verify';
    for (let i = 0; i < geometry.count; i++) if (written(i)) progress.bytesToVerify += geometry.lengthOf(i);
    const sourceDigests = loop.sourceDigests;
    // Blocks skipped by a resume: the scan may have their digests already.
    if (scan) for (let i = 0; i < startBlock && i < scan.scanned; i++) sourceDigests.set(i, scan.digests.isZero(i) ? undefined : scan.digests.digest(i));
    const readBackDigests = channel.readBackDigests;
    const arrived = (i: number): Promise<void> => channel.arrived(readBackDigests, i);
    const mismatches = await compareReadBack({ source, geometry, dataBlocks, sourceDigests, readBackDigests, written, arrived, progress });
    await channel.send(FrameType.Verdict, 0, Buffer.from(JSON.stringify({ ok: mismatches.length === 0, mismatches } satisfies VerifyVerdict)));
    return mismatches;
  }

  private lostConnection(): FerryError {
    const compared = Math.ceil(this.progress.bytesCompared / this.geometry.blockSize);
    return new FerryError('ABORTED', `Sync from "${this.options.path}" interrupted: lost the connection to the destination after ${compared} of ${this.geometry.count} blocks`, {
      hint: 'run the same command again with --resume to continue from the last checkpoint',
    });
  }
}
