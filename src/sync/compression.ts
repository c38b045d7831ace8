/**
 * Whether to compress blocks on the wire. `auto` compresses only when the
 * link, not the source, is what holds the sync back, and zstd level 1 can
 * produce bytes faster than the link carries them: on a fast link the
 * compressor would be the bottleneck.
 */
import { compress } from 'zstd-napi';

export type CompressMode = 'auto' | 'zstd' | 'none';

export class CompressionPolicy {
  private enabled: boolean;
  /** Bytes in / seconds spent compressing, measured on real blocks. */
  private inBytes = 0;
  private compressSeconds = 0;
  private outBytes = 0;
  private sampled = 0;
  private linkBound = false;

  constructor(
    readonly mode: CompressMode,
    private readonly bandwidthBytesPerSecond?: number,
  ) {
    this.enabled = mode === 'zstd';
  }

  /** Compresses a block when the policy says so; returns undefined to send it raw. */
  maybeCompress(block: Buffer): Buffer | undefined {
    if (!this.enabled && !(this.mode === 'auto' && this.wantSample())) return undefined;
    const started = performance.now();
    const out = compress(block, { compressionLevel: 1 });
    this.compressSeconds += (performance.now() - started) / 1000;
    this.inBytes += block.length;
    this.outBytes += out.length;
    return out.length < block.length ? out : undefined;
  }

  /**
   * Re-decides in auto mode from the measured link rate (bytes per second the
   * socket actually drained while the sender was waiting on it).
   */
  update(linkBytesPerSecond: number | undefined, linkBound: boolean): void {
    this.linkBound = linkBound;
    if (this.mode !== 'auto' || this.inBytes === 0) return;
    const link = this.bandwidthBytesPerSecond ?? (linkBound ? linkBytesPerSecond : undefined);
    if (!link) {
      this.enabled = false;
      return;
    }
    const speed = this.inBytes / Math.max(this.compressSeconds, 1e-6);
    const ratio = this.outBytes / this.inBytes;
    // Compressed, the wire carries `ratio` of each block; it pays when the
    // compressor outruns the link and the data actually shrinks.
    this.enabled = ratio < 0.9 && speed > link;
  }

  get active(): boolean {
    return this.enabled;
  }

  private wantSample(): boolean {
    // Measure only while the link may be the limit (a known --bandwidth, or
    // the sender waiting on the socket), and then 1 block in 32: sampling
    // costs CPU the read/hash/send pipeline needs on a fast link.
    if (!this.bandwidthBytesPerSecond && !this.linkBound) return false;
    return this.sampled++ % 32 === 0;
  }
}
