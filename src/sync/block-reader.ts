/**
 * Reads a disk's blocks in order with several reads and hashes in flight,
 * and yields each block's state in order: zero (from the allocation map or
 * found all-zero after reading) or data with its digest and bytes in a pool
 * slot. This is the read+hash half shared by both ends of a sync.
 */
import type { DiskEndpoint } from '../storage/endpoint.js';
import type { HashPool, Slot } from './hash-pool.js';

/** Consecutive data blocks handed to a pool thread as one job. */
const RUN = 4;

export type BlockState =
  | { index: number; zero: true; length: number }
  | { index: number; zero: false; length: number; digest: Buffer | undefined; slot: Slot };

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
export async function* readBlocks(o: BlockReaderOptions): AsyncGenerator<BlockState> {
  const size = o.disk.size;
  const lengthOf = (i: number): number => Math.min(o.blockSize, size - i * o.blockSize);
  /**
   * Reads consecutive data blocks as one job for a pool thread: read, zero
   * check and hash happen there, and one message each way serves them all
   * (per-block messages kept the main thread, not the threads, busiest).
   */
  // Runs take their slots in order, all of one run's before any of the
  // next's: two runs each holding part of what they need, with no slot
  // left, would wait for each other for ever.
  let slotsTaken: Promise<unknown> = Promise.resolve();
  const takeSlots = (count: number, into: Slot[]): Promise<void> => {
    const taking = slotsTaken.then(async () => {
      for (let k = 0; k < count; k++) into.push(await o.pool.acquire());
    });
    slotsTaken = taking;
    return taking;
  };
  const loadRun = async (first: number, count: number): Promise<BlockState[]> => {
    const slots: Slot[] = [];
    try {
      await takeSlots(count, slots);
      const results = await o.pool.readAndHashRun(
        o.disk.blockSource(o.fromDevice),
        slots.map((slot, k) => ({ slot, length: lengthOf(first + k), position: (first + k) * o.blockSize, digest: !o.needsDigest || o.needsDigest(first + k) })),
      );
      return results.map((r, k) => {
        const index = first + k;
        if (!r.zero) return { index, zero: false, length: lengthOf(index), digest: r.digest, slot: slots[k]! };
        o.pool.release(slots[k]!);
        return { index, zero: true, length: lengthOf(index) };
      });
    } catch (e) {
      for (const s of slots) o.pool.release(s);
      throw e;
    }
  };
  // Runs in flight, in order; each yields its blocks in order.
  const queue: Array<Promise<BlockState[]>> = [];
  let queued = 0;
  let next = o.from;
  const wanted = (i: number): boolean => !o.wanted || o.wanted(i);
  const fill = (): void => {
    while (next < o.to && queued < o.window && !o.stopped?.()) {
      const i = next++;
      if (!wanted(i)) continue;
      if (!o.dataBlocks[i]) {
        // A run of holes: nothing to read.
        const holes: BlockState[] = [{ index: i, zero: true, length: lengthOf(i) }];
        while (next < o.to && !o.dataBlocks[next] && holes.length < 1024) {
          if (wanted(next)) holes.push({ index: next, zero: true, length: lengthOf(next) });
          next++;
        }
        queue.push(Promise.resolve(holes));
        queued += 1;
        continue;
      }
      let count = 1;
      while (count < RUN && next < o.to && o.dataBlocks[next] && wanted(next)) {
        next++;
        count++;
      }
      const run = loadRun(i, count);
      run.catch(() => undefined); // surfaced when awaited in order
      queue.push(run);
      queued += count;
    }
  };
  fill();
  while (queue.length) {
    const states = await queue.shift()!;
    queued -= states[0]?.zero && !o.dataBlocks[states[0].index] ? 1 : states.length;
    fill();
    yield* states;
  }
}
