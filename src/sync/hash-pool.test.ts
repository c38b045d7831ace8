import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { test } from 'node:test';
import { createXXHash128 } from 'hash-wasm';
import { HashPool, isAllZero, zeroDigest } from './hash-pool.js';

test('HashPool hashes shared slots on threads like a direct XXH3-128', async () => {
  const pool = HashPool.create(1 << 16, 4, 2);
  try {
    const h = await createXXHash128();
    const slots = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    const digests = await Promise.all(
      slots.map((s, i) => {
        randomFillSync(s.buf);
        return pool.hash(s, 1000 * (i + 1)).then((d) => {
          h.init();
          h.update(s.buf.subarray(0, 1000 * (i + 1)));
          return [d, Buffer.from(h.digest('binary'))] as const;
        });
      }),
    );
    for (const [got, want] of digests) assert.ok(got.equals(want));
    assert.equal(new Set(digests.map(([d]) => d.toString('hex'))).size, 3);
  } finally {
    await pool.close();
  }
});

test('isAllZero and zeroDigest', async () => {
  const b = Buffer.alloc(200_000);
  assert.ok(isAllZero(b));
  b[150_000] = 1;
  assert.ok(!isAllZero(b));
  assert.equal((await zeroDigest(10)).length, 16);
});

test('a pool without threads hashes on the calling thread, alike', async () => {
  const threaded = HashPool.create(4096, 1, 1);
  const inline = HashPool.create(4096, 1, 0);
  try {
    const [a, b] = [await threaded.acquire(), await inline.acquire()];
    randomFillSync(a.buf);
    a.buf.copy(b.buf);
    assert.ok((await threaded.hash(a, 3000)).equals(await inline.hash(b, 3000)));
  } finally {
    await threaded.close();
    await inline.close();
  }
});
