/**
 * Per-block digests in one flat buffer (16 bytes a block, plus a state byte),
 * so a multi-TiB disk costs tens of MB, not millions of small objects.
 * Consumers can wait for a block's digest to arrive.
 */
import { DIGEST_SIZE } from './xxh128.js';

const MISSING = 0;
const DIGEST = 1;
const ZERO = 2;

export class DigestTable {
  private readonly digests: Buffer;
  private readonly state: Uint8Array;
  private readonly waiters = new Map<number, () => void>();

  constructor(readonly count: number) {
    this.digests = Buffer.alloc(count * DIGEST_SIZE);
    this.state = new Uint8Array(count);
  }

  /** A table of `count` blocks all known to be zeros. */
  static zeros(count: number): DigestTable {
    const t = new DigestTable(count);
    t.state.fill(ZERO);
    return t;
  }

  /** Records a digest, or (digest undefined) that the block is all zeros. */
  set(index: number, digest: Uint8Array | undefined): void {
    if (digest) {
      this.digests.set(digest.subarray(0, DIGEST_SIZE), index * DIGEST_SIZE);
      this.state[index] = DIGEST;
    } else this.state[index] = ZERO;
    const w = this.waiters.get(index);
    if (w) {
      this.waiters.delete(index);
      w();
    }
  }

  has(index: number): boolean {
    return this.state[index] !== MISSING;
  }

  isZero(index: number): boolean {
    return this.state[index] === ZERO;
  }

  /** The digest of a data block (a view; copy it to keep it past the next set). */
  digest(index: number): Buffer {
    return this.digests.subarray(index * DIGEST_SIZE, (index + 1) * DIGEST_SIZE);
  }

  /** Whether two tables agree on a block: both zero, or equal digests. */
  same(index: number, other: DigestTable): boolean {
    if (this.isZero(index) || other.isZero(index)) return this.isZero(index) && other.isZero(index);
    return this.digest(index).equals(other.digest(index));
  }

  /** How many blocks have an entry. */
  known(): number {
    let n = 0;
    for (const s of this.state) if (s !== MISSING) n++;
    return n;
  }

  /** The table as bytes (state bytes, then digests), for storing. */
  toBytes(): Buffer {
    return Buffer.concat([Buffer.from(this.state.buffer, this.state.byteOffset, this.count), this.digests]);
  }

  /** A table from `toBytes()` output; undefined when the bytes do not fit `count` blocks. */
  static fromBytes(count: number, bytes: Buffer): DigestTable | undefined {
    if (bytes.length !== count * (1 + DIGEST_SIZE)) return undefined;
    const t = new DigestTable(count);
    t.state.set(bytes.subarray(0, count));
    bytes.copy(t.digests, 0, count);
    return t;
  }

  /** Resolves when the block's entry is there; `abort` rejects it (connection lost). */
  wait(index: number): Promise<void> {
    if (this.has(index)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(index, resolve));
  }
}
