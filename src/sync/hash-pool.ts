/**
 * Block buffers in shared memory plus a pool of threads that read, check for
 * zeros and hash blocks (see xxh128.ts), so scanning a large disk uses every
 * core while the main thread keeps sending and writing.
 */
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { alignedSharedMemory } from '../storage/aligned-memory.js';
import type { BlockSource } from '../storage/block-read.js';
import { examineBlock } from './examine-block.js';
import type { Answer, Job } from './hash-worker.js';

/** Hashing threads per host unless told otherwise: one per core, at most 4. */
export function defaultHashThreads(): number {
  return Math.min(4, cpus().length);
}

export interface Slot {
  readonly index: number;
  /** The slot's block buffer (blockSize bytes of shared memory, aligned for direct I/O). */
  readonly buf: Buffer;
}

/**
 * Threads started ahead of need, or kept from a closed pool, because loading
 * a thread costs CPU a sync would otherwise pay at its start.
 * `warmHashThreads` is called when a sync is being prepared; a closed pool
 * leaves its threads here for the next pool to take.
 */
const warm: Worker[] = [];
/** Threads that have loaded and can take jobs at once. */
const loaded = new WeakSet<Worker>();
/** Idle threads kept at most. */
const MAX_WARM = 4;
const spawnThread = (): Worker => {
  const w = new Worker(new URL('./hash-worker.js', import.meta.url));
  w.unref();
  w.on('message', (m: { ready?: boolean }) => {
    if (m.ready) loaded.add(w);
  });
  // A thread that fails while waiting must not take the agent down (an
  // 'error' event without a listener would): it is dropped, and a pool
  // that took it rejects its jobs through its own listener.
  const drop = (): void => {
    const i = warm.indexOf(w);
    if (i >= 0) warm.splice(i, 1);
  };
  w.on('error', drop);
  w.on('exit', drop);
  return w;
};

/** Asks a thread to end once it has loaded and done its queued jobs; terminates it if it has not within 10 s. */
function endThread(w: Worker): Promise<void> {
  if (w.threadId === -1) return Promise.resolve(); // already gone
  return new Promise((resolve) => {
    const stuck = setTimeout(() => void w.terminate(), 10_000);
    w.once('exit', () => {
      clearTimeout(stuck);
      resolve();
    });
    w.postMessage({ exit: true });
  });
}

export function warmHashThreads(count: number): void {
  while (warm.length < count) warm.push(spawnThread());
}

/** Job ids are unique across pools: a thread kept from a closed pool may still answer one of its jobs. */
let nextJobId = 0;

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly free: Slot[] = [];
  private readonly waiters: Array<(s: Slot) => void> = [];
  private readonly pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  private turn = 0;
  /** Called once no job is pending. */
  private readonly idle: Array<() => void> = [];
  /** Per thread, takes this pool's listeners off it (when the thread is handed on). */
  private readonly detach: Array<() => void> = [];
  private inlineBuffer: Uint8Array | undefined;

  private constructor(
    readonly blockSize: number,
    slotCount: number,
    threads: number,
  ) {
    // One aligned region, slot i at i * blockSize: blocks can be read and
    // written with O_DIRECT straight from the slots.
    const memory = alignedSharedMemory(blockSize * slotCount);
    for (let i = 0; i < slotCount; i++) this.free.push({ index: i, buf: Buffer.from(memory, i * blockSize, blockSize) });
    for (let t = 0; t < threads; t++) {
      const w = warm.shift() ?? spawnThread();
      w.postMessage({ attach: { memory, blockSize } });
      const message = (m: Answer): void => {
        const p = this.pending.get(m.id);
        if (!p) return; // a job of the pool this thread served before
        this.pending.delete(m.id);
        if (m.error) p.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
        else p.resolve(m);
        this.whenIdle();
      };
      const fail = (e: Error): void => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        this.whenIdle();
      };
      // A thread gone (or never started) answers nothing: fail its jobs rather than wait forever.
      const exit = (code: number): void => fail(new Error(`a hashing thread exited (code ${code})`));
      w.on('message', message);
      w.on('error', fail);
      w.on('exit', exit);
      this.detach.push(() => w.off('message', message).off('error', fail).off('exit', exit));
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

  /**
   * Reads blocks into their slots, and hashes each unless it is all zeros
   * (or its `digest` is false): one job for a pool thread, one message each
   * way. Slots are aligned, so `src.fd` may be a direct descriptor.
   */
  async readAndHashRun(src: BlockSource, blocks: Array<{ slot: Slot; length: number; position: number; digest: boolean }>): Promise<Array<{ zero: boolean; digest?: Buffer }>> {
    if (this.workers.length === 0) {
      return blocks.map((b) => withBufferDigest(examineBlock(src, b.slot.buf.subarray(0, b.length), b.position, b.digest)));
    }
    const a = await this.post({ id: 0, read: { ...src, blocks: blocks.map((b) => ({ slot: b.slot.index, length: b.length, position: b.position, digest: b.digest })) } });
    return a.blocks!.map(withBufferDigest);
  }

  /**
   * Reads and hashes blocks for their digests alone (zero blocks found as
   * such): each thread reads into a buffer of its own, so no slot is held
   * and many blocks go in one message. Once `cancel[0]` is set, a job
   * answers for the blocks it has done: the answer may be shorter.
   */
  async hashBlocks(src: BlockSource, blocks: Array<{ length: number; position: number }>, cancel?: Int32Array): Promise<Array<{ zero: boolean; digest?: Buffer }>> {
    if (this.workers.length === 0) return this.hashBlocksHere(src, blocks, cancel);
    const a = await this.post({ id: 0, hash: { ...src, blocks, cancel } });
    return a.blocks!.map(withBufferDigest);
  }

  /** `hashBlocks` on the calling thread, synchronously. */
  hashBlocksHere(src: BlockSource, blocks: Array<{ length: number; position: number }>, cancel?: Int32Array): Array<{ zero: boolean; digest?: Buffer }> {
    const buf = (this.inlineBuffer ??= new Uint8Array(alignedSharedMemory(this.blockSize), 0, this.blockSize));
    const out: Array<{ zero: boolean; digest?: Buffer }> = [];
    for (const b of blocks) {
      if (cancel && Atomics.load(cancel, 0) !== 0) break;
      out.push(withBufferDigest(examineBlock(src, buf.subarray(0, b.length), b.position, true)));
    }
    return out;
  }

  /** Whether some thread has loaded and can take jobs at once. */
  get threadReady(): boolean {
    return this.workers.some((w) => loaded.has(w));
  }

  private whenIdle(): void {
    if (this.pending.size) return;
    // Idle workers must not keep the process alive; busy ones must.
    for (const x of this.workers) x.unref();
    for (const f of this.idle.splice(0)) f();
  }

  /** The threads' ids (for tests: which threads a pool got). */
  get threadIds(): number[] {
    return this.workers.map((w) => w.threadId);
  }

  /** How many threads hash (0: the calling thread does). */
  get threads(): number {
    return this.workers.length;
  }

  private post(job: Job): Promise<Answer> {
    const id = nextJobId++;
    const worker = this.workers[this.turn++ % this.workers.length]!;
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...job, id });
    });
  }

  /**
   * Done with the threads: once their jobs are answered, up to MAX_WARM are
   * kept for the next pool, the others asked to end. A thread is asked
   * rather than terminated: one terminated while still loading (a pool
   * closed right after it was created) can take the whole process down.
   */
  async close(): Promise<void> {
    // An ending thread does not hold the process open (not even ref'd): a
    // caller with nothing else pending would see node exit mid-await.
    const holdOpen = setInterval(() => undefined, 1000);
    try {
      // Jobs still queued (a stopped scan's) answer quickly: their cancel flag is up.
      if (this.pending.size) await new Promise<void>((resolve) => this.idle.push(resolve));
      const ending: Array<Promise<void>> = [];
      this.workers.forEach((w, i) => {
        this.detach[i]!();
        w.unref();
        if (w.threadId !== -1 && warm.length < MAX_WARM) warm.push(w);
        else ending.push(endThread(w));
      });
      this.workers.length = 0;
      this.detach.length = 0;
      await Promise.all(ending);
    } finally {
      clearInterval(holdOpen);
    }
  }
}

/** A block's state with its digest as a Buffer view (threads answer with plain Uint8Arrays). */
function withBufferDigest(r: { zero: boolean; digest?: Uint8Array }): { zero: boolean; digest?: Buffer } {
  return { zero: r.zero, digest: r.digest ? Buffer.from(r.digest.buffer, r.digest.byteOffset, r.digest.byteLength) : undefined };
}
