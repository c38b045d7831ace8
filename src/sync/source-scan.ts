/**
 * A head start for the source of a re-sync. While the destination is still
 * getting ready (opening its disk, loading the digests it remembers), the
 * source already reads and hashes its disk, keeping only the digests. The
 * sender then decides those blocks from their digests and reads again only
 * the few that must cross. When more than a few cross, it gives the scan
 * up and reads the rest as usual.
 *
 * Worth it when most blocks will turn out equal (the destination holds an
 * older copy). The source's agent starts one as it inspects the source,
 * before anyone knows whether the destination exists; the controller
 * stops it as soon as the destination turns out missing, where every
 * block must cross and would be read twice (see src/transfer/head-start-scan.ts).
 */
import type { DiskInfo } from '../storage/image-info.js';
import { trace } from '../util/trace.js';
import { BlockGeometry } from './block-geometry.js';
import { DigestTable } from './digest-table.js';
import { closeSourceDisk, openSourceDisk, type SourceDisk } from './source-disk.js';

export class SourceScan {
  /** Digests of blocks [0, scanned): zero blocks recorded as such. */
  readonly digests: DigestTable;
  private frontier = 0;
  private stopping = false;
  /** Raised by stop(): the threads drop the scan's queued blocks. */
  private readonly cancel = new Int32Array(new SharedArrayBuffer(4));
  private readonly running: Promise<void>;
  private readonly geometry: BlockGeometry;
  /** The next block to hand out. */
  private next = 0;
  /** The allocation map, once in. */
  private dataBlocks: Uint8Array | undefined;

  private constructor(
    readonly source: SourceDisk,
    readonly info: DiskInfo,
  ) {
    this.geometry = new BlockGeometry(source.disk.size, source.blockSize);
    this.digests = new DigestTable(this.geometry.count);
    this.running = this.scan();
  }

  static async start(info: DiskInfo, blockSize: number, hashThreads?: number): Promise<SourceScan> {
    return new SourceScan(await openSourceDisk(info, blockSize, hashThreads), info);
  }

  /** Blocks below this have digests. */
  get scanned(): number {
    return this.frontier;
  }

  /** Resolves once block `index` has its digest (true), or the scan ended without it (false). */
  async reached(index: number): Promise<boolean> {
    if (!this.digests.has(index)) await Promise.race([this.digests.wait(index), this.running]);
    return this.digests.has(index);
  }

  /** Stops reading ahead; resolves once the reads in flight have landed or been dropped, with `scanned`. */
  async stop(): Promise<number> {
    this.stopping = true;
    Atomics.store(this.cancel, 0, 1);
    await this.running;
    return this.frontier;
  }

  /** Stops and releases the disk and threads: for a scan no sender took. */
  async close(): Promise<void> {
    await this.stop();
    await closeSourceDisk(this.source);
  }

  /**
   * Hands the threads chunks of blocks to hash for their digests alone and
   * records the answers in order. Holes (per the allocation map) are
   * recorded as zero blocks without reading. The map comes from qemu-img,
   * which takes a moment to start: until it is in, every block is read (a
   * hole reads as zeros, which is cheap).
   *
   * Until a thread has loaded, this thread hashes the first chunks itself
   * between its other work: the scan is the longest part of a re-sync.
   * Each thread has CHUNKS_PER_THREAD chunks queued so that it keeps
   * reading while the main thread is busy elsewhere; queued work costs
   * nothing at `stop()`, where the threads drop it (the cancel flag).
   */
  private async scan(): Promise<void> {
    this.source.dataBlocks.then(
      (map) => (this.dataBlocks = map),
      () => undefined, // without a map every block is read
    );
    try {
      trace('scan: start');
      await this.hashHereUntilThreadsLoad();
      if (this.next > 0) trace(`scan: threads up at block ${this.next}`);
      await this.hashOnThreads();
      trace(`scan: ${this.stopping ? 'stopped' : 'done'} at block ${this.frontier}`);
    } catch {
      // A read failed: the sender reads from the frontier on and meets the error itself.
    }
  }

  /** Hashes chunks on this thread, one at a time between its other work, until a hashing thread has loaded. */
  private async hashHereUntilThreadsLoad(): Promise<void> {
    const { disk, pool } = this.source;
    const src = disk.blockSource();
    while (pool.threads > 0 && !pool.threadReady && this.next < this.digests.count && !this.stopping) {
      const chunk = this.nextChunk();
      if (!this.record(chunk, pool.hashBlocksHere(src, chunk.blocks, this.cancel))) break;
      await new Promise((resolve) => setImmediate(resolve)); // answers, messages from the threads
    }
  }

  /** Keeps CHUNKS_PER_THREAD chunks queued per thread and records their answers in order. */
  private async hashOnThreads(): Promise<void> {
    const { disk, pool } = this.source;
    const src = disk.blockSource();
    const queued: Array<Chunk & { hashed: Promise<Array<{ zero: boolean; digest?: Buffer }>> }> = [];
    const fill = (): void => {
      while (this.next < this.digests.count && queued.length < Math.max(2, pool.threads * CHUNKS_PER_THREAD) && !this.stopping) {
        const chunk = this.nextChunk();
        const hashed = chunk.blocks.length ? pool.hashBlocks(src, chunk.blocks, this.cancel) : Promise.resolve([]);
        hashed.catch(() => undefined); // surfaced in order below
        queued.push({ ...chunk, hashed });
      }
    };
    fill();
    while (queued.length) {
      const chunk = queued.shift()!;
      const results = await chunk.hashed;
      fill();
      if (!this.record(chunk, results)) break;
    }
  }

  /** The next SCAN_CHUNK blocks; those the allocation map (once in) calls holes are not read. */
  private nextChunk(): Chunk {
    const first = this.next;
    const end = Math.min(this.digests.count, first + SCAN_CHUNK);
    this.next = end;
    const read = new Uint8Array(end - first);
    const blocks: Chunk['blocks'] = [];
    for (let i = first; i < end; i++) {
      if (this.dataBlocks && !this.dataBlocks[i]) continue;
      read[i - first] = 1;
      blocks.push({ position: this.geometry.offsetOf(i), length: this.geometry.lengthOf(i) });
    }
    return { first, end, read, blocks };
  }

  /** Records a chunk's answers; false when they stop short (the scan was stopped). */
  private record(chunk: Chunk, results: Array<{ zero: boolean; digest?: Buffer }>): boolean {
    let k = 0;
    let i = chunk.first;
    for (; i < chunk.end; i++) {
      if (chunk.read[i - chunk.first] && k === results.length) break; // cut short by stop()
      const r = chunk.read[i - chunk.first] ? results[k++]! : { zero: true };
      this.digests.set(i, r.zero ? undefined : r.digest);
    }
    this.frontier = i;
    return i === chunk.end;
  }
}

/** Blocks handed to a thread in one message; `read` marks those read (the others are holes). */
interface Chunk {
  first: number;
  end: number;
  read: Uint8Array;
  blocks: Array<{ position: number; length: number }>;
}

/** Blocks per message to a hashing thread. */
const SCAN_CHUNK = 32;
/** Messages queued per hashing thread (see scan()). */
const CHUNKS_PER_THREAD = 4;
