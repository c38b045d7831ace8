import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { isAllZero } from '../storage/zeros.js';
import { blockDigest, examineBlock } from './examine-block.js';
import { xxh128 } from './xxh128.js';

test('isAllZero finds a single set byte anywhere, across its 64 KiB comparison steps', () => {
  const size = 3 * 65536 + 100;
  assert.equal(isAllZero(new Uint8Array(size)), true);
  assert.equal(isAllZero(new Uint8Array(0)), true);
  for (const at of [0, 65535, 65536, size - 1]) {
    const b = new Uint8Array(size);
    b[at] = 1;
    assert.equal(isAllZero(b), false, `byte ${at}`);
  }
  // A view into a larger buffer looks at its own bytes only.
  const big = new Uint8Array(1000);
  big[0] = 7;
  assert.equal(isAllZero(big.subarray(1)), true);
});

test('blockDigest is undefined for zeros and the XXH3-128 digest otherwise', () => {
  assert.equal(blockDigest(new Uint8Array(4096)), undefined);
  const data = randomBytes(4096);
  assert.deepEqual(blockDigest(data), xxh128(data));
});

test('examineBlock reads a block from a file and hashes it only when asked', async () => {
  const path = `/var/tmp/ferry-examine-${process.pid}`;
  const data = randomBytes(8192);
  data.fill(0, 4096);
  await fs.writeFile(path, data);
  const fh = await fs.open(path, 'r');
  try {
    const src = { fd: fh.fd, tailFd: fh.fd };
    const view = new Uint8Array(4096);
    assert.deepEqual(examineBlock(src, view, 0, true), { zero: false, digest: xxh128(data.subarray(0, 4096)) });
    assert.deepEqual(examineBlock(src, view, 0, false), { zero: false, digest: undefined });
    assert.deepEqual(examineBlock(src, view, 4096, true), { zero: true });
  } finally {
    await fh.close();
    await fs.rm(path, { force: true });
  }
});
