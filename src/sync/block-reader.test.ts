import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { openDisk } from '../storage/endpoint.js';
import { inspectDisk } from '../storage/image-info.js';
import { readBlocks } from './block-reader.js';
import { HashPool } from './hash-pool.js';
import { xxh128 } from './xxh128.js';

test('runs cut short by unwanted blocks never wait for each other on a pool with few slots', async () => {
  const file = `/var/tmp/ferry-block-reader-${process.pid}.img`;
  const blockSize = 4096;
  await fs.writeFile(file, randomBytes(16 * blockSize));
  const disk = await openDisk(await inspectDisk(file), false);
  try {
    // As many slots as the window, as the destination's verification uses:
    // a run of 3 (blocks 0-2) and one of 4 (4-7) need 7 slots between them.
    const pool = HashPool.create(blockSize, 4, 0);
    const wanted = new Set([0, 1, 2, 4, 5, 6, 7, 9]);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks: new Uint8Array(16).fill(1), from: 0, to: 16, window: 4, wanted: (i) => wanted.has(i) })) {
        seen.push(b.index);
        if (!b.zero) pool.release(b.slot);
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`stuck after blocks ${seen.join(',')}`)), 5000)));
    await Promise.race([reading, timeout]).finally(() => clearTimeout(timer));
    assert.deepEqual(seen, [...wanted]);
  } finally {
    await disk.close();
    await fs.rm(file);
  }
});

test('blocks come out in order: holes unread, zero blocks found as such, data with its digest when one is needed', async () => {
  const file = `/var/tmp/ferry-block-reader-states-${process.pid}.img`;
  const blockSize = 4096;
  const data = randomBytes(6 * blockSize);
  data.fill(0, 2 * blockSize, 3 * blockSize); // block 2: written zeros
  await fs.writeFile(file, data);
  const disk = await openDisk(await inspectDisk(file), false);
  try {
    const pool = HashPool.create(blockSize, 8, 0);
    const dataBlocks = Uint8Array.from([1, 1, 1, 0, 1, 1]); // block 3 is a hole by the map
    const states: Array<{ index: number; zero: boolean; digest?: string }> = [];
    for await (const b of readBlocks({ disk, pool, blockSize, dataBlocks, from: 0, to: 6, window: 3, needsDigest: (i) => i !== 5 })) {
      states.push(b.zero ? { index: b.index, zero: true } : { index: b.index, zero: false, digest: b.digest?.toString('hex') });
      if (!b.zero) pool.release(b.slot);
    }
    const digestOf = (i: number): string => xxh128(data.subarray(i * blockSize, (i + 1) * blockSize)).toString('hex');
    assert.deepEqual(states, [
      { index: 0, zero: false, digest: digestOf(0) },
      { index: 1, zero: false, digest: digestOf(1) },
      { index: 2, zero: true },
      { index: 3, zero: true },
      { index: 4, zero: false, digest: digestOf(4) },
      { index: 5, zero: false, digest: undefined },
    ]);
  } finally {
    await disk.close();
    await fs.rm(file);
  }
});
