/**
 * The destination's half of the verification: reads back from the disk
 * what this run wrote (data and zeroed blocks) plus what earlier, resumed
 * runs wrote, and streams each block's digest to the source, which
 * compares. Every other block was just compared equal by hashing the
 * destination's own disk.
 *
 * On a direct disk a block can be read back as soon as its write completes,
 * so in a re-sync (few writes, an otherwise idle disk) the reads overlap
 * the stream, one block at a time; in a full copy, reads mixed in with the
 * writes would slow it down, so everything else is read back at the end.
 */
import { blocksWithData } from '../storage/allocation.js';
import { alignedSharedMemory } from '../storage/aligned-memory.js';
import { readBlock } from '../storage/block-read.js';
import type { DiskEndpoint } from '../storage/endpoint.js';
import type { BlockGeometry } from './block-geometry.js';
import { readBlocks } from './block-reader.js';
import type { BlockWriter } from './block-writer.js';
import type { DigestTable } from './digest-table.js';
import { blockDigest } from './examine-block.js';
import type { FrameWriter } from './frame-writer.js';
import { HashPool } from './hash-pool.js';
import type { LazyHashPool } from './lazy-hash-pool.js';
import { FrameType } from './protocol.js';

/** Up to this many blocks are read back on the main thread: starting threads would cost more. */
const FEW_BLOCKS = 64;

export interface ReadBackOptions {
  disk: DiskEndpoint;
  geometry: BlockGeometry;
  /** Blocks below this were written by earlier runs, and are read back too. */
  resumeFrom: number;
  /** What this run wrote, and whether it is writing now. */
  blocks: BlockWriter;
  writer: FrameWriter;
  /** Where each block's digest as read back is recorded (the next run's digest cache). */
  resultDigests: DigestTable;
  pool: LazyHashPool;
  /** Blocks read ahead when reading back at the end. */
  window: number;
  /** Whether the connection is gone (an early read's failure then goes unreported). */
  closed(): boolean;
  onError(e: Error): void;
}

export class ReadBackVerifier {
  /** Per block, 1 once read back early. */
  private readonly readEarly: Uint8Array;
  private early: Promise<void> | undefined;
  private earlyBuffer: Uint8Array | undefined;

  constructor(private readonly options: ReadBackOptions) {
    this.readEarly = new Uint8Array(options.geometry.count);
  }

  /** Block `index` was just written: reads it back now if the disk has nothing else to do. */
  readSoon(index: number): void {
    const { disk, geometry, blocks, resumeFrom } = this.options;
    const mostlyUnchanged = blocks.blocksWritten * 8 <= blocks.applied - resumeFrom;
    if (this.early || blocks.writing || !mostlyUnchanged || !disk.direct) return;
    const buffer = (this.earlyBuffer ??= new Uint8Array(alignedSharedMemory(geometry.blockSize), 0, geometry.blockSize));
    const view = buffer.subarray(0, geometry.lengthOf(index));
    this.early = this.readOne(index, view)
      .catch((e: Error) => {
        if (!this.options.closed()) this.options.onError(e);
      })
      .finally(() => (this.early = undefined));
  }

  /** Waits for an early read under way. */
  async settle(): Promise<void> {
    await this.early;
  }

  /** Block `index` changed after it was read back early: it is read again at the end. */
  forget(index: number): void {
    this.readEarly[index] = 0;
  }

  /**
   * Reads back every block still to verify and sends its digest.
   * `fromDisk`: what is on the disk now, not what the page cache remembers.
   */
  async readBack(fromDisk: boolean): Promise<void> {
    const { disk, geometry, pool, resultDigests, writer } = this.options;
    // Direct reads bypass the page cache by themselves.
    if (fromDisk && !disk.direct) {
      await disk.reopen();
      await disk.dropCache();
    }
    const wanted = (i: number): boolean => this.wanted(i);
    const few = this.count(wanted) <= FEW_BLOCKS;
    const using = few && !pool.started ? HashPool.create(geometry.blockSize, 4, 0) : pool.get();
    const dataBlocks = few ? new Uint8Array(geometry.count).fill(1) : blocksWithData(await disk.dataRanges(), geometry.size, geometry.blockSize);
    const window = few ? 4 : this.options.window;
    for await (const block of readBlocks({ disk, pool: using, blockSize: geometry.blockSize, dataBlocks, from: 0, to: geometry.count, window, wanted, fromDevice: fromDisk })) {
      if (!block.zero) using.release(block.slot);
      const digest = block.zero ? undefined : block.digest;
      resultDigests.set(block.index, digest);
      await writer.sendDigest(FrameType.VerifyHash, block.index, digest);
    }
  }

  /** Whether block `index` is still to be read back: written by this run or a resumed one, and not read early. */
  private wanted(index: number): boolean {
    return (index < this.options.resumeFrom || this.options.blocks.touched(index)) && this.readEarly[index] === 0;
  }

  private count(wanted: (index: number) => boolean): number {
    let count = 0;
    for (let i = 0; i < this.options.geometry.count; i++) if (wanted(i)) count++;
    return count;
  }

  private async readOne(index: number, view: Uint8Array): Promise<void> {
    await readBlock(this.options.disk.blockSource(true), view, this.options.geometry.offsetOf(index));
    const digest = blockDigest(view);
    this.options.resultDigests.set(index, digest);
    this.readEarly[index] = 1;
    await this.options.writer.sendDigest(FrameType.VerifyHash, index, digest);
  }
}
