/**
 * Reads a disk's blocks in order with several reads and hashes in flight,
 * and yields each block's state in order: zero (from the allocation map or
 * found all-zero after reading) or data with its digest and bytes in a pool
 * slot. This is the read+hash half shared by both ends of a sync.
 */
import type { DiskEndpoint } from '../storage/endpoint.js';
import { BlockGeometry } from './block-geometry.js';
import type { HashPool, Slot } from './hash-pool.js';

/** Consecutive data blocks handed to a pool thread as one job. */
const RUN = 4;

export type BlockState = { index: number; zero: true; length: number } | { index: number; zero: false; length: number; digest: Buffer | undefined; slot: Slot };

export interface BlockReaderOptions {
  disk: DiskEndpoint;
  pool: HashPool;
  blockSize: number;
  /** Per block: 1 when the allocation map says it may hold data. */
  dataBlocks: Uint8Array;
  from: number;
  to: number;
  /** Blocks read ahead of the consumer. */
  window: number;
  /** Only these blocks are read (others are skipped entirely); all when absent. */
  wanted?: (index: number) => boolean;
  /** Whether a data block needs its digest (checked when it is read); always when absent. */
  needsDigest?: (index: number) => boolean;
  /** Read from the device, not the page cache (direct disks; see DiskEndpoint.read). */
  fromDevice?: boolean;
  /** Once true, no further reads start: the blocks in flight are yielded, then the reader ends. */
  stopped?: () => boolean;
}

/**
 * Yields block states in index order. The consumer must release each data
 * block's slot (pool.release) once done with its bytes.
 */
export function readBlocks(options: BlockReaderOptions): AsyncGenerator<BlockState> {
  return new BlockReader(options).blocks();
}

/** Holes per state list at most (a run of holes costs nothing to read). */
const HOLES_PER_RUN = 1024;

class BlockReader {
  private readonly geometry: BlockGeometry;
  /** Runs in flight, in order; each yields its blocks in order. */
  private readonly queue: Array<Promise<BlockState[]>> = [];
  /** Blocks in flight (a run of holes counts as one). */
  private queued = 0;
  /** The next block to consider. */
  private next: number;
  /**
   * Runs take their slots in order, all of one run's before any of the
   * next's: two runs each holding part of what they need, with no slot
   * left, would wait for each other for ever.
   */
  private slotsTaken: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: BlockReaderOptions) {
    this.geometry = new BlockGeometry(options.disk.size, options.blockSize);
    this.next = options.from;
  }

  async *blocks(): AsyncGenerator<BlockState> {
    this.fill();
    while (this.queue.length) {
      const states = await this.queue.shift()!;
      this.queued -= states[0]?.zero && !this.options.dataBlocks[states[0].index] ? 1 : states.length;
      this.fill();
      yield* states;
    }
  }

  private wanted(index: number): boolean {
    return !this.options.wanted || this.options.wanted(index);
  }

  /** Starts reads until `window` blocks are in flight. */
  private fill(): void {
    const { to, window, dataBlocks, stopped } = this.options;
    while (this.next < to && this.queued < window && !stopped?.()) {
      const i = this.next++;
      if (!this.wanted(i)) continue;
      if (!dataBlocks[i]) {
        this.queue.push(Promise.resolve(this.holesFrom(i)));
        this.queued += 1;
        continue;
      }
      const count = this.dataRun();
      const run = this.loadRun(i, count);
      run.catch(() => undefined); // surfaced when awaited in order
      this.queue.push(run);
      this.queued += count;
    }
  }

  /** The run of holes starting at `first` (nothing to read), up to HOLES_PER_RUN; moves `next` past it. */
  private holesFrom(first: number): BlockState[] {
    const { to, dataBlocks } = this.options;
    const holes: BlockState[] = [{ index: first, zero: true, length: this.geometry.lengthOf(first) }];
    while (this.next < to && !dataBlocks[this.next] && holes.length < HOLES_PER_RUN) {
      if (this.wanted(this.next)) holes.push({ index: this.next, zero: true, length: this.geometry.lengthOf(this.next) });
      this.next++;
    }
    return holes;
  }

  /** How many consecutive wanted data blocks, from the one just taken, make one job (up to RUN); moves `next` past them. */
  private dataRun(): number {
    const { to, dataBlocks } = this.options;
    let count = 1;
    while (count < RUN && this.next < to && dataBlocks[this.next] && this.wanted(this.next)) {
      this.next++;
      count++;
    }
    return count;
  }

  private takeSlots(count: number, into: Slot[]): Promise<void> {
    const taking = this.slotsTaken.then(async () => {
      for (let k = 0; k < count; k++) into.push(await this.options.pool.acquire());
    });
    this.slotsTaken = taking;
    return taking;
  }

  /**
   * Reads consecutive data blocks as one job for a pool thread: read, zero
   * check and hash happen there, and one message each way serves them all.
   */
  private async loadRun(first: number, count: number): Promise<BlockState[]> {
    const { pool, disk, fromDevice, needsDigest } = this.options;
    const slots: Slot[] = [];
    try {
      await this.takeSlots(count, slots);
      const jobs = slots.map((slot, k) => ({ slot, length: this.geometry.lengthOf(first + k), position: this.geometry.offsetOf(first + k), digest: !needsDigest || needsDigest(first + k) }));
      const results = await pool.readAndHashRun(disk.blockSource(fromDevice), jobs);
      return results.map((r, k) => {
        const index = first + k;
        const length = this.geometry.lengthOf(index);
        if (!r.zero) return { index, zero: false, length, digest: r.digest, slot: slots[k]! };
        pool.release(slots[k]!);
        return { index, zero: true, length };
      });
    } catch (e) {
      for (const slot of slots) pool.release(slot);
      throw e;
    }
  }
}
