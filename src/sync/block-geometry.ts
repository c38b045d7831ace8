/**
 * How a disk divides into blocks: the count, and each block's offset and
 * length (the last one may be short). Both ends of a sync agree on it from
 * the source's size and the block size.
 */
export class BlockGeometry {
  /** Blocks in the disk, the last one perhaps short. */
  readonly count: number;

  constructor(
    readonly size: number,
    readonly blockSize: number,
  ) {
    this.count = Math.ceil(size / blockSize);
  }

  /** Byte offset of block `index`. */
  offsetOf(index: number): number {
    return index * this.blockSize;
  }

  /** Bytes in block `index`: the block size, less for the last block of a disk whose size is not a multiple of it. */
  lengthOf(index: number): number {
    return Math.min(this.blockSize, this.size - index * this.blockSize);
  }
}
