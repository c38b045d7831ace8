/**
 * Hashing thread of the block hash pool: hashes a slot of shared memory with
 * XXH3-128 and answers with the 16-byte digest. No bytes are copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createXXHash128 } from 'hash-wasm';

const { memory, blockSize } = workerData as { memory: SharedArrayBuffer; blockSize: number };
const hasher = await createXXHash128();

parentPort!.on('message', (m: { id: number; slot: number; length: number }) => {
  hasher.init();
  hasher.update(new Uint8Array(memory, m.slot * blockSize, m.length));
  const digest = hasher.digest('binary');
  parentPort!.postMessage({ id: m.id, digest });
});
