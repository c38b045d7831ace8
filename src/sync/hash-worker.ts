/**
 * Thread of the block pool: reads blocks into their slots of shared memory,
 * checks them for zeros and hashes them (XXH3-128), answering with the
 * 16-byte digests. Reading here rather than on the main thread saves a hop
 * per block and keeps the main thread free for the network; taking a run of
 * consecutive blocks per job saves messages.
 */
import { parentPort } from 'node:worker_threads';
import type { BlockSource } from '../storage/block-read.js';
import { alignedSharedMemory } from '../storage/aligned-memory.js';
import { examineBlock } from './examine-block.js';
import { messageOf } from '../util/errors.js';

export type Job = {
  id: number;
  /** Read blocks into slots, check for zeros, hash the others when asked. */
  read?: BlockSource & { blocks: Array<{ slot: number; length: number; position: number; digest: boolean }> };
  /**
   * Only the digests: read each block into this thread's own buffer, check
   * for zeros, hash. When `cancel[0]` turns non-zero the job ends early,
   * answering for the blocks done so far.
   */
  hash?: BlockSource & { blocks: Array<{ length: number; position: number }>; cancel?: Int32Array };
};
export type Answer = {
  id: number;
  blocks?: Array<{ zero: boolean; digest?: Uint8Array }>;
  error?: { message: string; code?: string };
};

// The pool's memory arrives first (threads are started before the pool exists).
let memory: SharedArrayBuffer;
let blockSize: number;
/** This thread's own block buffer, for digest-only jobs. */
let ownBuffer: Uint8Array | undefined;

parentPort!.on('message', (job: Job | { attach: { memory: SharedArrayBuffer; blockSize: number } } | { exit: true }) => {
  if ('attach' in job) {
    // A thread serves one pool after another (see hash-pool.ts): each brings its own memory, perhaps another block size.
    if (job.attach.blockSize !== blockSize) ownBuffer = undefined;
    ({ memory, blockSize } = job.attach);
    return;
  }
  if ('exit' in job) {
    // The pool is done: with the port closed the thread has nothing left and ends.
    parentPort!.close();
    return;
  }
  const view = (slot: number, length: number): Uint8Array => new Uint8Array(memory, slot * blockSize, length);
  let answer: Answer;
  try {
    if (job.hash) {
      const src = job.hash;
      const buf = (ownBuffer ??= new Uint8Array(alignedSharedMemory(blockSize)));
      const blocks: Answer['blocks'] = [];
      for (const b of src.blocks) {
        if (src.cancel && Atomics.load(src.cancel, 0) !== 0) break;
        blocks.push(examineBlock(src, buf.subarray(0, b.length), b.position, true));
      }
      answer = { id: job.id, blocks };
    } else {
      const src = job.read!;
      answer = {
        id: job.id,
        blocks: src.blocks.map((b) => examineBlock(src, view(b.slot, b.length), b.position, b.digest)),
      };
    }
  } catch (e) {
    answer = { id: job.id, error: { message: messageOf(e), code: (e as NodeJS.ErrnoException).code } };
  }
  parentPort!.postMessage(answer);
});

// Loaded: the pool may now count on this thread (see HashPool.threadReady).
parentPort!.postMessage({ ready: true });
