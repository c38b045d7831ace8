/**
 * Block buffers in shared memory plus a pool of hashing threads, so hashing
 * large disks uses every core while the main thread keeps reading, sending
 * and writing. The hash is XXH3-128 (hash-wasm): 128-bit, about 4 GB/s per
 * core here, against 1.6 GB/s for sha256 and 0.8 GB/s for BLAKE3 (wasm).
 */
import { Worker } from 'node:worker_threads';
import { createXXHash128 } from 'hash-wasm';

export const DIGEST_SIZE = 16;

export interface Slot {
  readonly index: number;
  /** View of the whole shared buffer (blockSize bytes). */
  readonly buf: Buffer;
}

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly free: Slot[] = [];
  private readonly waiters: Array<(s: Slot) => void> = [];
  private readonly pending = new Map<number, { resolve: (d: Buffer) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private turn = 0;

  private constructor(readonly blockSize: number, slotCount: number, threads: number) {
    const sabs = Array.from({ length: slotCount }, () => new SharedArrayBuffer(blockSize));
    sabs.forEach((s, i) => this.free.push({ index: i, buf: Buffer.from(s) }));
    for (let t = 0; t < threads; t++) {
      const w = new Worker(new URL('./hash-worker.js', import.meta.url), { workerData: { slots: sabs } });
      w.on('message', (m: { id: number; digest: Uint8Array }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        // Idle workers must not keep the process alive; busy ones must.
        if (this.pending.size === 0) for (const x of this.workers) x.unref();
        p?.resolve(Buffer.from(m.digest.buffer, m.digest.byteOffset, m.digest.byteLength));
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      w.unref();
      this.workers.push(w);
    }
  }

  /**
   * A pool with `threads` hashing threads; with 0 it hashes on the calling
   * thread, which suits a few blocks (starting threads costs more than that).
   */
  static create(blockSize: number, slotCount: number, threads: number): HashPool {
    return new HashPool(blockSize, slotCount, Math.max(0, threads));
  }

  /** Waits for a free block buffer. */
  acquire(): Promise<Slot> {
    const s = this.free.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(slot: Slot): void {
    const w = this.waiters.shift();
    if (w) w(slot);
    else this.free.push(slot);
  }

  /** Hashes the first `length` bytes of a slot on a worker thread. */
  hash(slot: Slot, length: number): Promise<Buffer> {
    if (this.workers.length === 0) return this.hashHere(slot, length);
    const id = this.nextId++;
    const worker = this.workers[this.turn++ % this.workers.length]!;
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, slot: slot.index, length });
    });
  }

  private hasher: ReturnType<typeof createXXHash128> | undefined;
  private async hashHere(slot: Slot, length: number): Promise<Buffer> {
    const h = await (this.hasher ??= createXXHash128());
    h.init();
    h.update(slot.buf.subarray(0, length));
    return Buffer.from(h.digest('binary'));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The digest of `length` zero bytes (same algorithm as the pool). */
export async function zeroDigest(length: number): Promise<Buffer> {
  const h = await createXXHash128();
  h.init();
  h.update(new Uint8Array(length));
  return Buffer.from(h.digest('binary'));
}

const ZERO_PAGE = Buffer.alloc(64 * 1024);

/** True when every byte is zero (compares 64 KiB at a time; memcmp speed). */
export function isAllZero(buf: Buffer): boolean {
  for (let off = 0; off < buf.length; off += ZERO_PAGE.length) {
    const end = Math.min(buf.length, off + ZERO_PAGE.length);
    if (!buf.subarray(off, end).equals(ZERO_PAGE.subarray(0, end - off))) return false;
  }
  return true;
}
