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

test('a run of blocks read by a pool thread: zeros found, digests as if hashed one by one', async () => {
  const file = `/var/tmp/ferry-hash-run-${process.pid}.img`;
  const blocks = [Buffer.alloc(4096), Buffer.alloc(4096, 1), Buffer.alloc(4096), Buffer.alloc(4096)];
  randomFillSync(blocks[3]!);
  const fs = await import('node:fs');
  fs.writeFileSync(file, Buffer.concat(blocks).subarray(0, 4 * 4096 - 100)); // a short last block reads as zero-padded
  const fd = fs.openSync(file, 'r');
  const pool = HashPool.create(4096, 4, 1);
  try {
    const slots = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()]);
    const got = await pool.readAndHashRun(
      { fd, tailFd: fd },
      slots.map((slot, k) => ({ slot, length: 4096, position: k * 4096, digest: k !== 1 })),
    );
    assert.deepEqual(got.map((r) => r.zero), [true, false, true, false]);
    assert.equal(got[1]!.digest, undefined, 'a digest only when asked');
    const h = await createXXHash128();
    h.init();
    h.update(Buffer.concat([blocks[3]!.subarray(0, 4096 - 100), Buffer.alloc(100)]));
    assert.ok(got[3]!.digest!.equals(Buffer.from(h.digest('binary'))));
  } finally {
    await pool.close();
    fs.closeSync(fd);
    fs.rmSync(file);
  }
});
