/**
 * Hashing thread of the block pool: reads a block into its slot of shared
 * memory, checks it for zeros and hashes it (XXH3-128), answering with
 * the 16-byte digest. Reading here rather than on the main thread saves a
 * hop per block and keeps the main thread free for the network.
 */
import { parentPort } from 'node:worker_threads';
import { isAllZero, readBlockSync, type BlockSource } from './block-io.js';
import { xxh128 } from './xxh128.js';

// The pool's memory arrives first (threads are started before the pool exists).
let memory: SharedArrayBuffer;
let blockSize: number;

export type Job = { id: number; slot: number; length: number; read?: BlockSource & { position: number; digest: boolean } };
export type Answer = { id: number; zero?: boolean; digest?: Uint8Array; error?: { message: string; code?: string } };

parentPort!.on('message', (job: Job | { attach: { memory: SharedArrayBuffer; blockSize: number } }) => {
  if ('attach' in job) {
    ({ memory, blockSize } = job.attach);
    return;
  }
  const view = new Uint8Array(memory, job.slot * blockSize, job.length);
  let answer: Answer;
  try {
    if (job.read) {
      readBlockSync(job.read, view, job.read.position);
      if (isAllZero(view)) answer = { id: job.id, zero: true };
      else answer = { id: job.id, zero: false, digest: job.read.digest ? xxh128(view) : undefined };
    } else answer = { id: job.id, digest: xxh128(view) };
  } catch (e) {
    answer = { id: job.id, error: { message: (e as Error).message, code: (e as NodeJS.ErrnoException).code } };
  }
  parentPort!.postMessage(answer);
});
