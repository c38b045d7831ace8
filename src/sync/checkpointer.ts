/**
 * When the destination records its resume point (see checkpoint.ts): every
 * couple of seconds it records how far its writes have got, without
 * flushing; rarely it flushes the disk and records that mark as durable.
 * A flush stalls every write queued behind it, so flushing often would cost
 * the sync most of its speed. Disks whose writes do not reach the kernel
 * until flushed (images behind a FUSE export) flush at every record.
 */
import type { DiskEndpoint } from '../storage/endpoint.js';
import { bootId, saveCheckpoint } from './checkpoint.js';

export interface CheckpointerOptions {
  destination: string;
  sourceId: string;
  size: number;
  blockSize: number;
  /** Durable mark of the checkpoint this run resumed from (0 when none). */
  durableFrom: number;
  /** Whether a completed write survives the writing process dying (raw files, block devices). */
  writesSurviveProcessExit: boolean;
  recordEveryMs?: number;
  flushEveryMs?: number;
  /** Told each recorded mark (every block below it is safe from a crash of either agent). */
  onRecorded: (mark: number) => Promise<void> | void;
  onError: (e: Error) => void;
}

export class Checkpointer {
  private durable: number;
  private lastRecord = performance.now();
  private lastFlush = performance.now();
  private running: Promise<void> | undefined;

  constructor(
    private readonly disk: DiskEndpoint,
    private readonly options: CheckpointerOptions,
  ) {
    this.durable = options.durableFrom;
  }

  /** Called as blocks are applied: starts a record in the background when one is due. `mark` is the applied watermark. */
  maybeRecord(mark: () => number): void {
    if (this.running) return;
    const now = performance.now();
    const flushDue = !this.options.writesSurviveProcessExit || now - this.lastFlush > (this.options.flushEveryMs ?? 30_000);
    if (now - this.lastRecord < (this.options.recordEveryMs ?? 2000) && !(this.options.writesSurviveProcessExit && flushDue)) return;
    this.lastRecord = now;
    if (flushDue) this.lastFlush = now;
    // The mark is taken before the flush starts: fdatasync covers every write completed before it.
    const at = mark();
    this.running = this.record(at, flushDue)
      .catch((e: Error) => this.options.onError(e))
      .finally(() => (this.running = undefined));
  }

  /** Records `mark` now (end of stream, disconnect), after any record in progress; `flush` makes it durable. */
  async recordNow(mark: number, flush: boolean): Promise<void> {
    await this.running;
    await this.record(mark, flush || !this.options.writesSurviveProcessExit);
  }

  /** Waits for a record in progress. */
  async settle(): Promise<void> {
    await this.running;
  }

  private async record(mark: number, flush: boolean): Promise<void> {
    if (flush) {
      await this.disk.flush();
      this.durable = mark;
    }
    await saveCheckpoint(
      {
        version: 2,
        destination: this.options.destination,
        sourceId: this.options.sourceId,
        size: this.options.size,
        blockSize: this.options.blockSize,
        writtenBlocks: mark,
        durableBlocks: this.durable,
        bootId: bootId(),
        updatedAt: new Date().toISOString(),
      },
      flush,
    );
    await this.options.onRecorded(mark);
  }
}
