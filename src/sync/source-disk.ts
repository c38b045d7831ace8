/**
 * The source disk opened for a sync: the disk itself, a pool of threads that
 * read and hash its blocks, and its allocation map (which blocks may hold
 * data). A sender opens one, or takes the one a head-start scan opened (see
 * source-scan.ts).
 */
import { blocksWithData } from '../storage/allocation.js';
import { openDisk, type DiskEndpoint } from '../storage/endpoint.js';
import type { DiskInfo } from '../storage/image-info.js';
import { HashPool, defaultHashThreads } from './hash-pool.js';

export interface SourceDisk {
  readonly disk: DiskEndpoint;
  readonly pool: HashPool;
  readonly blockSize: number;
  /** Blocks read ahead of their consumer: enough to keep every thread busy despite the round trip to it and back. */
  readonly window: number;
  /** Per block, 1 when the allocation map says it may hold data. */
  readonly dataBlocks: Promise<Uint8Array>;
}

export async function openSourceDisk(info: DiskInfo, blockSize: number, hashThreads?: number): Promise<SourceDisk> {
  const disk = await openDisk(info, false);
  const threads = hashThreads ?? defaultHashThreads();
  const window = threads * 4 + 8;
  const pool = HashPool.create(blockSize, window + 16, threads);
  const dataBlocks = disk.dataRanges().then((r) => blocksWithData(r, disk.size, blockSize));
  dataBlocks.catch(() => undefined); // surfaced when awaited
  return { disk, pool, blockSize, window, dataBlocks };
}

export async function closeSourceDisk(s: SourceDisk): Promise<void> {
  await s.pool.close();
  await s.disk.close();
}
