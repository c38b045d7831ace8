import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { statDisk } from '../storage/image-info.js';
import { BlockGeometry } from './block-geometry.js';
import { DigestTable } from './digest-table.js';
import { openSourceDisk } from './source-disk.js';
import { addRange, compareReadBack } from './source-verifier.js';
import { initialProgress } from './sync-progress.js';
import { tempDir } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 4096;
let dir: string;
before(async () => (dir = await tempDir('source-verifier')));
after(() => fs.rm(dir, { recursive: true, force: true }));

test('adjacent differing ranges merge; others stay apart', () => {
  const ranges: Array<{ start: number; length: number }> = [];
  addRange(ranges, 0, 10);
  addRange(ranges, 10, 5);
  addRange(ranges, 20, 5);
  assert.deepEqual(ranges, [
    { start: 0, length: 15 },
    { start: 20, length: 5 },
  ]);
});

test('written blocks are compared with what the destination read back; missing source digests are hashed meanwhile', async () => {
  const path = `${dir}/src.img`;
  const data = randomBytes(8 * BLOCK);
  await fs.writeFile(path, data);
  const source = await openSourceDisk(await statDisk(path), BLOCK, 0);
  const geometry = new BlockGeometry(data.length, BLOCK);
  const digestOf = (i: number): Buffer => xxh128(data.subarray(i * BLOCK, (i + 1) * BLOCK));
  try {
    const sourceDigests = new DigestTable(geometry.count);
    for (const i of [4, 5, 6, 7]) sourceDigests.set(i, digestOf(i)); // 0-3: skipped by a resume, not hashed yet
    const readBackDigests = new DigestTable(geometry.count);
    for (const i of [0, 1, 2, 3, 5, 6]) readBackDigests.set(i, digestOf(i));
    readBackDigests.set(2, Buffer.alloc(16, 1)); // the destination holds something else at 2, 5 and 6
    readBackDigests.set(5, undefined);
    readBackDigests.set(6, Buffer.alloc(16, 2));
    const written = (i: number): boolean => i < 4 || i === 5 || i === 6;
    const progress = initialProgress(data.length, geometry.count);
    const mismatches = await compareReadBack({ source, geometry, dataBlocks: new Uint8Array(8).fill(1), sourceDigests, readBackDigests, written, arrived: () => Promise.resolve(), progress });
    assert.deepEqual(mismatches, [
      { start: 2 * BLOCK, length: BLOCK },
      { start: 5 * BLOCK, length: 2 * BLOCK },
    ]);
    assert.equal(progress.bytesVerified, 6 * BLOCK);
    assert.deepEqual(sourceDigests.digest(0), digestOf(0), 'the resumed blocks were hashed');
  } finally {
    await source.pool.close();
    await source.disk.close();
  }
});
