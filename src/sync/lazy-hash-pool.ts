/**
 * A hash pool started on first use: the destination needs threads only
 * when it must read its disk (no remembered digests) or read it back
 * (verification), and starting them costs CPU a re-sync need not pay.
 */
import { HashPool } from './hash-pool.js';

export class LazyHashPool {
  private pool: HashPool | undefined;

  constructor(
    private readonly blockSize: number,
    private readonly slotCount: number,
    readonly threads: number,
  ) {}

  /** The pool, started now if it was not. */
  get(): HashPool {
    return (this.pool ??= HashPool.create(this.blockSize, this.slotCount, this.threads));
  }

  /** Whether `get()` has started the pool. */
  get started(): boolean {
    return this.pool !== undefined;
  }

  /** Closes the pool if it was started. */
  async close(): Promise<void> {
    await this.pool?.close();
  }
}
