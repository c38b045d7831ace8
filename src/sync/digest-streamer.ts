/**
 * The destination's digests, streamed to the source as fast as they are
 * known: remembered ones (a digest cache that still describes the disk, or
 * a disk just created, all zeros) go out a thousand to a frame without
 * reading anything; the others are read and hashed, in order, with several
 * reads in flight. Each is recorded in `destinationDigests` as it goes.
 */
import { blocksWithData } from '../storage/allocation.js';
import type { DiskEndpoint } from '../storage/endpoint.js';
import { FerryError } from '../util/errors.js';
import type { BlockGeometry } from './block-geometry.js';
import { readBlocks, type BlockState } from './block-reader.js';
import type { DigestTable } from './digest-table.js';
import type { FrameWriter } from './frame-writer.js';
import type { LazyHashPool } from './lazy-hash-pool.js';
import { FrameType, encodeHashes } from './protocol.js';

/** Known digests per Hashes frame. */
const KNOWN_PER_FRAME = 1024;

export interface DigestStreamOptions {
  /** Undefined in a dry run into a missing destination: every block reads as zeros. */
  disk: DiskEndpoint | undefined;
  geometry: BlockGeometry;
  writer: FrameWriter;
  /** Digests known without reading the disk, where they are. */
  known?: DigestTable;
  /** Where every streamed digest is recorded. */
  destinationDigests: DigestTable;
  pool: LazyHashPool;
  /** Blocks read ahead of the stream. */
  window: number;
  /** Whether the connection is gone: the stream then stops. */
  closed(): boolean;
}

export class DigestStreamer {
  constructor(private readonly options: DigestStreamOptions) {}

  /** Streams the digests of blocks `from` on. */
  async stream(from: number): Promise<void> {
    const { disk, geometry } = this.options;
    if (!disk) return this.streamZeros(from);
    const known = this.options.known;
    let reader: AsyncGenerator<BlockState> | undefined;
    for (let i = from; i < geometry.count;) {
      if (this.options.closed()) break;
      if (known?.has(i)) {
        i += await this.sendKnownRun(known, i);
        continue;
      }
      reader ??= await this.openReader(disk, i);
      await this.sendRead(reader, i);
      i++;
    }
    await reader?.return(undefined);
  }

  private isKnown(index: number): boolean {
    return this.options.known?.has(index) ?? false;
  }

  /** Sends the run of known digests starting at `first` in one Hashes frame; returns its length. */
  private async sendKnownRun(known: DigestTable, first: number): Promise<number> {
    const { destinationDigests, geometry, writer } = this.options;
    const run: Array<Buffer | undefined> = [];
    for (let k = first; k < geometry.count && run.length < KNOWN_PER_FRAME && known.has(k); k++) {
      const digest = known.isZero(k) ? undefined : known.digest(k);
      destinationDigests.set(k, digest);
      run.push(digest);
    }
    await writer.send(FrameType.Hashes, first, encodeHashes(run));
    return run.length;
  }

  /** Reads the blocks not known, from `from` on, skipping known ones. */
  private async openReader(disk: DiskEndpoint, from: number): Promise<AsyncGenerator<BlockState>> {
    const { geometry, pool, window } = this.options;
    const dataBlocks = blocksWithData(await disk.dataRanges(), geometry.size, geometry.blockSize);
    return readBlocks({ disk, pool: pool.get(), blockSize: geometry.blockSize, dataBlocks, from, to: geometry.count, window, wanted: (i) => !this.isKnown(i) });
  }

  private async sendRead(reader: AsyncGenerator<BlockState>, index: number): Promise<void> {
    const next = await reader.next();
    if (next.done || next.value.index !== index) {
      throw new FerryError('INTERNAL', `Block reader out of step at block ${index}`, { hint: 'run the sync again; report this if it recurs' });
    }
    const block = next.value;
    if (!block.zero) this.options.pool.get().release(block.slot);
    const digest = block.zero ? undefined : block.digest;
    this.options.destinationDigests.set(index, digest);
    await this.options.writer.sendDigest(FrameType.Hash, index, digest);
  }

  /** A missing destination in a dry run reads as zeros throughout. */
  private async streamZeros(from: number): Promise<void> {
    for (let i = from; i < this.options.geometry.count; i++) {
      this.options.destinationDigests.set(i, undefined);
      await this.options.writer.sendDigest(FrameType.Hash, i, undefined);
    }
  }
}
