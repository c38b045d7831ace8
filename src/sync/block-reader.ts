/**
 * Reads a disk's blocks in order with several reads and hashes in flight,
 * and yields each block's state in order: zero (from the allocation map or
 * found all-zero after reading) or data with its digest and bytes in a pool
 * slot. This is the read+hash half shared by both ends of a sync.
 */
import type { DiskEndpoint } from '../storage/endpoint.js';
import type { HashPool, Slot } from './hash-pool.js';

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
}

/**
 * Yields block states in index order. The consumer must release each data
 * block's slot (pool.release) once done with its bytes.
 */
export async function* readBlocks(o: BlockReaderOptions): AsyncGenerator<BlockState> {
  const size = o.disk.size;
  const lengthOf = (i: number): number => Math.min(o.blockSize, size - i * o.blockSize);
  const load = async (i: number): Promise<BlockState> => {
    const length = lengthOf(i);
    if (!o.dataBlocks[i]) return { index: i, zero: true, length };
    const slot = await o.pool.acquire();
    let r: { zero: boolean; digest?: Buffer };
    try {
      // Read, zero check and hash happen together on a pool thread.
      r = await o.pool.readAndHash(slot, o.disk.blockSource(o.fromDevice), length, i * o.blockSize, !o.needsDigest || o.needsDigest(i));
    } catch (e) {
      o.pool.release(slot);
      throw e;
    }
    if (r.zero) {
      o.pool.release(slot);
      return { index: i, zero: true, length };
    }
    return { index: i, zero: false, length, digest: r.digest, slot };
  };
  const queue: Array<Promise<BlockState>> = [];
  let next = o.from;
  const fill = (): void => {
    while (next < o.to && queue.length < o.window) {
      const i = next++;
      if (o.wanted && !o.wanted(i)) continue;
      const p = load(i);
      p.catch(() => undefined); // surfaced when awaited in order
      queue.push(p);
    }
  };
  fill();
  while (queue.length) {
    const state = await queue.shift()!;
    fill();
    yield state;
  }
}
