/**
 * The block digest: XXH3-128 (collisions between blocks are out of reach),
 * from the native xxhash-addon, which hashes the caller's memory in place
 * rather than copying each block into WebAssembly memory first.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { XXHash128 } = require('xxhash-addon') as { XXHash128: { hash(data: Uint8Array): Buffer } };

export const DIGEST_SIZE = 16;

export function xxh128(data: Uint8Array): Buffer {
  return XXHash128.hash(data);
}
