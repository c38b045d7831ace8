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
 * cancels it as soon as the destination turns out missing, where every
 * block must cross and would be read twice.
 */
import type { DiskInfo } from '../storage/image-info.js';
import { trace } from '../util/trace.js';
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

  private constructor(readonly source: SourceDisk, readonly info: DiskInfo) {
    this.digests = new DigestTable(Math.ceil(source.disk.size / source.blockSize));
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
    const { disk, pool, blockSize } = this.source;
    const count = this.digests.count;
    const lengthOf = (i: number): number => Math.min(blockSize, disk.size - i * blockSize);
    const src = disk.blockSource();
    let dataBlocks: Uint8Array | undefined;
    this.source.dataBlocks.then(
      (map) => (dataBlocks = map),
      () => undefined, // without a map every block is read
    );
    type Chunk = { first: number; end: number; read: Uint8Array; blocks: Array<{ position: number; length: number }> };
    let next = 0;
    const nextChunk = (): Chunk => {
      const first = next;
      const end = Math.min(count, first + SCAN_CHUNK);
      next = end;
      const read = new Uint8Array(end - first);
      const blocks: Chunk['blocks'] = [];
      for (let i = first; i < end; i++) {
        if (dataBlocks && !dataBlocks[i]) continue;
        read[i - first] = 1;
        blocks.push({ position: i * blockSize, length: lengthOf(i) });
      }
      return { first, end, read, blocks };
    };
    /** Records a chunk's answers; false when they stop short (the scan was stopped). */
    const record = (chunk: Chunk, results: Array<{ zero: boolean; digest?: Buffer }>): boolean => {
      let k = 0;
      let i = chunk.first;
      for (; i < chunk.end; i++) {
        if (chunk.read[i - chunk.first] && k === results.length) break; // cut short by stop()
        const r = chunk.read[i - chunk.first] ? results[k++]! : { zero: true };
        this.digests.set(i, r.zero ? undefined : r.digest);
      }
      this.frontier = i;
      return i === chunk.end;
    };
    try {
      trace('scan: start');
      while (pool.threads > 0 && !pool.threadReady && next < count && !this.stopping) {
        const chunk = nextChunk();
        if (!record(chunk, pool.hashBlocksHere(src, chunk.blocks, this.cancel))) break;
        await new Promise((resolve) => setImmediate(resolve)); // answers, messages from the threads
      }
      if (next > 0) trace(`scan: threads up at block ${next}`);
      const queued: Array<Chunk & { hashed: Promise<Array<{ zero: boolean; digest?: Buffer }>> }> = [];
      const fill = (): void => {
        while (next < count && queued.length < Math.max(2, pool.threads * CHUNKS_PER_THREAD) && !this.stopping) {
          const chunk = nextChunk();
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
        if (!record(chunk, results)) break;
      }
      trace(`scan: ${this.stopping ? 'stopped' : 'done'} at block ${this.frontier}`);
    } catch {
      // A read failed: the sender reads from the frontier on and meets the error itself.
    }
  }
}

/** Blocks per message to a hashing thread. */
const SCAN_CHUNK = 32;
/** Messages queued per hashing thread (see scan()). */
const CHUNKS_PER_THREAD = 4;
