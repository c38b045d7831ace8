/**
 * A head start for the source of a re-sync. While the destination is still
 * getting ready (opening its disk, loading the digests it remembers), the
 * source already reads and hashes its disk, keeping only the digests. The
 * sender then decides those blocks from their digests and reads again only
 * the few that must cross; it reads the rest as usual.
 *
 * Worth it when most blocks will turn out equal (the destination holds an
 * older copy); the controller does not start a scan for a missing
 * destination, where every block would be read twice.
 */
import type { DiskInfo } from '../storage/image-info.js';
import { trace } from '../util/trace.js';
import { readBlocks } from './block-reader.js';
import { DigestTable } from './digest-table.js';
import { closeSourceDisk, openSourceDisk, type SourceDisk } from './source-disk.js';

export class SourceScan {
  /** Digests of blocks [0, scanned): zero blocks recorded as such. */
  readonly digests: DigestTable;
  private frontier = 0;
  private stopping = false;
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

  /** Stops reading ahead; resolves once the reads in flight have landed, with `scanned`. */
  async stop(): Promise<number> {
    this.stopping = true;
    await this.running;
    return this.frontier;
  }

  /** Stops and releases the disk and threads: for a scan no sender took. */
  async close(): Promise<void> {
    await this.stop();
    await closeSourceDisk(this.source);
  }

  private async scan(): Promise<void> {
    const { disk, pool, blockSize, window } = this.source;
    try {
      const dataBlocks = await this.source.dataBlocks;
      trace('scan: start');
      const blocks = readBlocks({ disk, pool, blockSize, dataBlocks, from: 0, to: this.digests.count, window, stopped: () => this.stopping });
      for await (const b of blocks) {
        if (!b.zero) pool.release(b.slot);
        this.digests.set(b.index, b.zero ? undefined : b.digest);
        this.frontier = b.index + 1;
      }
      trace(`scan: ${this.stopping ? 'stopped' : 'done'} at block ${this.frontier}`);
    } catch {
      // A read failed: the sender reads from the frontier on and meets the error itself.
    }
  }
}
