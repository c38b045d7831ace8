/**
 * The source's decision for every block, in order: equal on both sides
 * (announced in runs, one frame for thousands), zeros (no bytes), or data
 * (the bytes, compressed when the policy says so, preceded by the digest
 * the destination remembers). It records the source's digests for the
 * verification and counts progress.
 */
import { FerryError } from '../util/errors.js';
import type { BlockGeometry } from './block-geometry.js';
import type { CompressionPolicy } from './compression.js';
import type { DestinationChannel } from './destination-channel.js';
import { DigestTable } from './digest-table.js';
import type { HashPool, Slot } from './hash-pool.js';
import { FrameFlag, FrameType } from './protocol.js';
import type { SourceBlock } from './source-blocks.js';
import type { SyncProgress } from './sync-progress.js';

/** Equal blocks announced per Same frame at most. */
const SAME_RUN_MAX = 1024;
/** How often the compression policy is re-decided from the link's behaviour. */
const RETHINK_MS = 2000;

export interface SendLoopOptions {
  geometry: BlockGeometry;
  dryRun: boolean;
  /** The run ends with a verification: every block needs its source digest. */
  verify: boolean;
  pool: HashPool;
  channel: DestinationChannel;
  policy: CompressionPolicy;
  /** Updated as blocks are decided. */
  progress: SyncProgress;
}

export class SendLoop {
  /** The source's digests of the blocks decided so far. */
  readonly sourceDigests: DigestTable;
  /** Per block, 1 when this run sent it (data or zeros). */
  private readonly sentBlocks: Uint8Array;
  private same: { start: number; count: number } | undefined;
  private lastDecision = performance.now();
  private sentAtDecision = 0;

  constructor(private readonly options: SendLoopOptions) {
    this.sourceDigests = new DigestTable(options.geometry.count);
    this.sentBlocks = new Uint8Array(options.geometry.count);
  }

  /**
   * Whether a data block needs its digest: to compare with a destination
   * block that holds data, and for the verification. A block going onto
   * zeros without verification is sent unhashed.
   */
  needsDigest(index: number): boolean {
    const destination = this.options.channel.destinationDigests;
    return this.options.verify || !destination.has(index) || !destination.isZero(index);
  }

  /** Whether this run sent block `index`. */
  sent(index: number): boolean {
    return this.sentBlocks[index] === 1;
  }

  /** Decides and sends every block `blocks` yields. */
  async run(blocks: AsyncIterable<SourceBlock>): Promise<void> {
    const { channel, progress } = this.options;
    const destination = channel.destinationDigests;
    for await (const block of blocks) {
      await channel.arrived(destination, block.index);
      if (block.zero) this.sourceDigests.set(block.index, undefined);
      else if (block.digest) this.sourceDigests.set(block.index, block.digest);
      if (block.zero) progress.blocksZero++;
      if (this.sourceDigests.has(block.index) && this.sourceDigests.same(block.index, destination)) await this.equal(block);
      else if (block.zero) await this.zero(block.index);
      else await this.data(block.index, block.length, block.digest, block.slot);
      progress.bytesCompared += block.length;
      this.rethinkCompression();
    }
    await this.flushSame();
  }

  private async equal(block: SourceBlock): Promise<void> {
    if (!block.zero && block.slot) this.options.pool.release(block.slot);
    if (this.options.dryRun) return;
    if (this.same) this.same.count++;
    else this.same = { start: block.index, count: 1 };
    if (this.same.count >= SAME_RUN_MAX) await this.flushSame();
  }

  private async zero(index: number): Promise<void> {
    await this.flushSame();
    this.options.progress.blocksChanged++;
    this.sentBlocks[index] = 1;
    if (!this.options.dryRun) await this.options.channel.send(FrameType.Zero, index);
  }

  private async data(index: number, length: number, digest: Buffer | undefined, slot: Slot | undefined): Promise<void> {
    const { pool, channel, policy, progress } = this.options;
    // Only a block found equal is ever decided without its bytes.
    if (!slot) throw new FerryError('INTERNAL', `Block ${index} must be sent but was not read`, { hint: 'run the sync again; report this if it recurs' });
    await this.flushSame();
    progress.blocksChanged++;
    this.sentBlocks[index] = 1;
    progress.bytesChanged += length;
    if (this.options.dryRun) return pool.release(slot);
    // The destination remembers what it holds for the next sync.
    if (digest) await channel.send(FrameType.SourceDigest, index, digest);
    const bytes = slot.buf.subarray(0, length);
    const packed = policy.maybeCompress(bytes);
    if (packed) {
      pool.release(slot);
      await channel.send(FrameType.Data, index, packed, FrameFlag.Compressed);
    } else {
      await channel.send(FrameType.Data, index, bytes, 0, () => pool.release(slot));
    }
  }

  /** Announces the run of equal blocks pending. */
  private async flushSame(): Promise<void> {
    if (!this.same) return;
    const run = this.same;
    this.same = undefined;
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32BE(run.count);
    await this.options.channel.send(FrameType.Same, run.start, count);
  }

  /**
   * Every RETHINK_MS, re-decides compression from the link's rate (what the
   * socket drained): the link is the limit when sending mostly waited while
   * the destination was not busy writing.
   */
  private rethinkCompression(): void {
    const now = performance.now();
    if (now - this.lastDecision <= RETHINK_MS) return;
    const { channel, policy } = this.options;
    const elapsed = (now - this.lastDecision) / 1000;
    const waited = channel.takeWaitingSeconds();
    policy.update((channel.bytesSent - this.sentAtDecision) / elapsed, waited / elapsed > 0.5 && channel.receiverBusy < 0.5);
    this.sentAtDecision = channel.bytesSent;
    this.lastDecision = now;
  }
}
