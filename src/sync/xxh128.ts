/**
 * The block digest: XXH3-128 (128 bits: no 32-bit digests, and collisions
 * between blocks are out of reach), from the native xxhash-addon, which
 * hashes the caller's memory in place at about 60 GB/s here. The WebAssembly
 * build (hash-wasm) managed 4-7 GB/s plus a copy of every block into its own
 * memory, and made hashing the largest cost of a re-sync.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { XXHash128 } = require('xxhash-addon') as { XXHash128: { hash(data: Uint8Array): Buffer } };

export const DIGEST_SIZE = 16;

export function xxh128(data: Uint8Array): Buffer {
  return XXHash128.hash(data);
}
