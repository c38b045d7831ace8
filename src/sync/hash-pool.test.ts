import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { createXXHash128 } from 'hash-wasm';
import { HashPool } from './hash-pool.js';
import { xxh128 } from './xxh128.js';
import { isAllZero } from '../storage/zeros.js';

/** XXH3-128 by another implementation (WebAssembly), to check the native one against. */
async function reference(data: Uint8Array): Promise<Buffer> {
  const h = await createXXHash128();
  h.init();
  h.update(data);
  return Buffer.from(h.digest('binary'));
}

/** Four 4 KiB blocks on disk: zeros, data, zeros, data cut 100 bytes short (read as zero-padded). */
function blockFile(): { path: string; fd: number; blocks: Buffer[] } {
  const path = `/var/tmp/ferry-hash-pool-${process.pid}-${Math.random().toString(16).slice(2)}.img`;
  const blocks = [Buffer.alloc(4096), randomFillSync(Buffer.alloc(4096)), Buffer.alloc(4096), randomFillSync(Buffer.alloc(4096))];
  fs.writeFileSync(path, Buffer.concat(blocks).subarray(0, 4 * 4096 - 100));
  blocks[3]!.fill(0, 4096 - 100);
  return { path, fd: fs.openSync(path, 'r'), blocks };
}

async function readAll(pool: HashPool, fd: number, digest: (k: number) => boolean) {
  const slots = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()]);
  return pool.readAndHashRun(
    { fd, tailFd: fd },
    slots.map((slot, k) => ({ slot, length: 4096, position: k * 4096, digest: digest(k) })),
  );
}

test('a pool thread reads a run of blocks: zeros found, XXH3-128 digests as another implementation computes them', async () => {
  const f = blockFile();
  const pool = HashPool.create(4096, 4, 2);
  try {
    const got = await readAll(pool, f.fd, (k) => k !== 1);
    assert.deepEqual(
      got.map((r) => r.zero),
      [true, false, true, false],
    );
    assert.equal(got[1]!.digest, undefined, 'a digest only when asked');
    assert.ok(got[3]!.digest!.equals(await reference(f.blocks[3]!)));
  } finally {
    await pool.close();
    fs.closeSync(f.fd);
    fs.rmSync(f.path);
  }
});

test('a pool without threads does the same on the calling thread', async () => {
  const f = blockFile();
  const threaded = HashPool.create(4096, 4, 1);
  const inline = HashPool.create(4096, 4, 0);
  try {
    const [a, b] = [await readAll(threaded, f.fd, () => true), await readAll(inline, f.fd, () => true)];
    assert.deepEqual(
      a.map((r) => r.digest?.toString('hex')),
      b.map((r) => r.digest?.toString('hex')),
    );
    assert.ok(b[1]!.digest!.equals(await reference(f.blocks[1]!)));
  } finally {
    await threaded.close();
    await inline.close();
    fs.closeSync(f.fd);
    fs.rmSync(f.path);
  }
});

test('isAllZero, and xxh128 on memory of any kind', async () => {
  const b = Buffer.alloc(200_000);
  assert.ok(isAllZero(b));
  b[150_000] = 1;
  assert.ok(!isAllZero(b));
  const shared = new Uint8Array(new SharedArrayBuffer(64), 8, 40).fill(3);
  assert.ok(xxh128(shared).equals(await reference(Buffer.alloc(40, 3))));
});

test('a digest job whose cancel flag is up answers for the blocks done before it, on a thread and inline', async () => {
  const fd = fs.openSync('/dev/zero', 'r');
  const blocks = Array.from({ length: 8 }, (_, i) => ({ position: i * 65536, length: 65536 }));
  try {
    for (const threads of [1, 0]) {
      const pool = HashPool.create(65536, 4, threads);
      try {
        const cancel = new Int32Array(new SharedArrayBuffer(4));
        assert.equal((await pool.hashBlocks({ fd, tailFd: fd }, blocks, cancel)).length, 8);
        Atomics.store(cancel, 0, 1);
        assert.equal((await pool.hashBlocks({ fd, tailFd: fd }, blocks, cancel)).length, 0, `${threads} threads`);
      } finally {
        await pool.close();
      }
    }
  } finally {
    fs.closeSync(fd);
  }
});

test('a closed pool leaves its threads to the next pool, which hashes right with its own block size even while an old job was still queued', async () => {
  const zero = fs.openSync('/dev/zero', 'r');
  const random = `/var/tmp/ferry-hash-pool-${process.pid}-reuse.img`;
  const data = randomFillSync(Buffer.alloc(256 * 1024));
  fs.writeFileSync(random, data);
  const fd = fs.openSync(random, 'r');
  try {
    const first = HashPool.create(4096, 4, 2);
    const ids = first.threadIds;
    // A long job (a stopped scan's) is still queued when the pool closes.
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    const queued = first.hashBlocks(
      { fd: zero, tailFd: zero },
      Array.from({ length: 4096 }, (_, i) => ({ position: i * 4096, length: 4096 })),
      cancel,
    );
    Atomics.store(cancel, 0, 1);
    await first.close();
    assert.ok((await queued).length < 4096, 'the cancelled job ended early');
    const second = HashPool.create(256 * 1024, 4, 2);
    try {
      assert.deepEqual(second.threadIds.sort(), ids.sort(), 'the same threads');
      const [r] = await second.hashBlocks({ fd, tailFd: fd }, [{ position: 0, length: 256 * 1024 }]);
      assert.ok(r!.digest!.equals(await reference(data)), "a block larger than the first pool's hashed whole");
    } finally {
      await second.close();
    }
  } finally {
    fs.closeSync(fd);
    fs.closeSync(zero);
    fs.rmSync(random);
  }
});
