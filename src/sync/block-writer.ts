/**
 * Writes the source's blocks into the destination disk in the order they
 * come: several writes at once (each tracked until it completes), adjacent
 * zero blocks gathered into one zeroRange, and a watermark below which
 * every block is applied, for checkpoints. It counts what it wrote and how
 * much of the time it kept the disk busy (the source weighs compression by
 * that).
 */
import { decompress } from 'zstd-napi';
import type { DiskEndpoint } from '../storage/endpoint.js';
import type { BlockGeometry } from './block-geometry.js';
import type { PooledFrame } from './frame-assembler.js';
import { FrameFlag } from './protocol.js';

/** Block writes in flight at once. */
const MAX_IN_FLIGHT = 4;

export interface BlockWriterEvents {
  /** A block's write completed: it can be read back from the disk. */
  onWritten(index: number): void;
  /** A write failed; the sync cannot go on. */
  onError(e: Error): void;
}

export class BlockWriter {
  bytesWritten = 0;
  blocksWritten = 0;
  blocksZeroed = 0;
  /** Blocks below this have been handed over (written, zeroed or found equal), though perhaps not completed. */
  applied: number;
  private readonly inflight = new Map<number, Promise<void>>();
  private zeroRun: { start: number; length: number } | undefined;
  /** Per block, 1 when this run wrote or zeroed it. */
  private readonly touchedBlocks: Uint8Array;
  private busyMs = 0;
  private busySince = performance.now();

  /** `disk` is undefined in a dry run into a missing destination: nothing is written. */
  constructor(
    private readonly disk: DiskEndpoint | undefined,
    private readonly geometry: BlockGeometry,
    resumeFrom: number,
    private readonly events: BlockWriterEvents,
  ) {
    this.applied = resumeFrom;
    this.touchedBlocks = new Uint8Array(geometry.count);
  }

  /**
   * Starts writing a Data frame's block; waits only while MAX_IN_FLIGHT
   * writes are under way. The frame is released once written. Without a
   * disk it does nothing.
   */
  async write(frame: PooledFrame): Promise<void> {
    const disk = this.disk;
    if (!disk) return;
    const started = performance.now();
    await this.flushZeros();
    const index = frame.index;
    const position = this.geometry.offsetOf(index);
    let length: number;
    let writing: Promise<void>;
    if (frame.flags & FrameFlag.Compressed) {
      const bytes = decompress(frame.payload);
      frame.release();
      writing = disk.write(bytes, position);
      length = bytes.length;
    } else {
      writing = disk.writev(frame.parts, position).finally(() => frame.release());
      length = frame.parts.reduce((n, p) => n + p.length, 0);
    }
    this.track(index, writing);
    if (this.inflight.size >= MAX_IN_FLIGHT) await Promise.race(this.inflight.values());
    this.busyMs += performance.now() - started;
    this.bytesWritten += length;
    this.blocksWritten++;
    this.touchedBlocks[index] = 1;
    this.applied = index + 1;
  }

  /** A block that must read as zeros: joins the pending run of zero blocks, or starts a new one. */
  async zero(index: number): Promise<void> {
    const start = this.geometry.offsetOf(index);
    const length = this.geometry.lengthOf(index);
    if (this.zeroRun && this.zeroRun.start + this.zeroRun.length === start) this.zeroRun.length += length;
    else {
      await this.flushZeros();
      this.zeroRun = { start, length };
    }
    this.blocksZeroed++;
    this.touchedBlocks[index] = 1;
    this.applied = index + 1;
  }

  /** Blocks found equal on both sides: nothing to write. */
  skip(index: number, count: number): void {
    this.applied = index + count;
  }

  /** The source has sent every block. */
  endOfStream(): void {
    this.applied = this.geometry.count;
  }

  /** Every block below this is applied: a pending zero run or a write under way is not yet. */
  watermark(): number {
    let mark = this.zeroRun ? Math.floor(this.zeroRun.start / this.geometry.blockSize) : this.applied;
    for (const index of this.inflight.keys()) mark = Math.min(mark, index);
    return mark;
  }

  /** Whether this run wrote or zeroed block `index`. */
  touched(index: number): boolean {
    return this.touchedBlocks[index] === 1;
  }

  /** Whether a block write is under way. */
  get writing(): boolean {
    return this.inflight.size > 0;
  }

  /** Waits for the writes under way. */
  async settle(): Promise<void> {
    await Promise.all(this.inflight.values());
  }

  /** Zeroes the pending run of zero blocks. */
  async flushZeros(): Promise<void> {
    if (this.zeroRun && this.disk) {
      const run = this.zeroRun;
      this.zeroRun = undefined;
      await this.disk.zeroRange(run.start, run.length);
    }
  }

  /** Share of the time since the last call spent writing rather than waiting for data (0..1). */
  takeBusyShare(): number {
    const now = performance.now();
    const busy = Math.min(1, this.busyMs / Math.max(1, now - this.busySince));
    this.busyMs = 0;
    this.busySince = now;
    return busy;
  }

  private track(index: number, writing: Promise<void>): void {
    this.inflight.set(
      index,
      writing.then(
        () => {
          this.inflight.delete(index);
          this.events.onWritten(index);
        },
        (e: Error) => {
          this.inflight.delete(index);
          this.events.onError(e);
        },
      ),
    );
  }
}
