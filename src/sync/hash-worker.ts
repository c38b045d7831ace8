/**
 * Hashing thread of the block hash pool: hashes a slot of shared memory with
 * XXH3-128 and answers with the 16-byte digest. No bytes are copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createXXHash128 } from 'hash-wasm';

const slots = (workerData as { slots: SharedArrayBuffer[] }).slots.map((s) => new Uint8Array(s));
const hasher = await createXXHash128();

parentPort!.on('message', (m: { id: number; slot: number; length: number }) => {
  hasher.init();
  hasher.update(slots[m.slot]!.subarray(0, m.length));
  const digest = hasher.digest('binary');
  parentPort!.postMessage({ id: m.id, digest });
});
