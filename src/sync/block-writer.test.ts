import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { compress } from 'zstd-napi';
import { BlockGeometry } from './block-geometry.js';
import { BlockWriter } from './block-writer.js';
import { FrameFlag, FrameType } from './protocol.js';
import { openFile, pooledFrame, tempDir } from './test-fixtures.js';

const BLOCK = 64 * 1024;
let dir: string;
before(async () => (dir = await tempDir('block-writer')));
after(() => fs.rm(dir, { recursive: true, force: true }));

test('data and zero blocks land where they belong; adjacent zero blocks become one zeroRange; stats and watermark follow', async () => {
  const path = `${dir}/disk.img`;
  await fs.writeFile(path, Buffer.alloc(8 * BLOCK, 0x11));
  const disk = await openFile(path);
  const zeroed: Array<[number, number]> = [];
  const zeroRange = disk.zeroRange.bind(disk);
  disk.zeroRange = (start, length) => (zeroed.push([start, length]), zeroRange(start, length));
  const written: number[] = [];
  const geometry = new BlockGeometry(8 * BLOCK, BLOCK);
  const blocks = new BlockWriter(disk, geometry, 1, { onWritten: (i) => written.push(i), onError: (e) => assert.fail(e) });
  try {
    const data = randomBytes(BLOCK);
    const text = Buffer.from('ferry '.repeat(BLOCK / 6 + 1)).subarray(0, BLOCK);
    const raw = pooledFrame(FrameType.Data, 1, data);
    await blocks.write(raw);
    await blocks.zero(2);
    await blocks.zero(3);
    // A pending zero run holds the watermark back: it is not on disk yet.
    assert.equal(blocks.watermark(), 2);
    await blocks.write(pooledFrame(FrameType.Data, 4, compress(text), FrameFlag.Compressed));
    blocks.skip(5, 2);
    await blocks.zero(7);
    await blocks.settle();
    await blocks.flushZeros();
    assert.equal(blocks.watermark(), 8);
    assert.deepEqual(zeroed, [
      [2 * BLOCK, 2 * BLOCK],
      [7 * BLOCK, BLOCK],
    ]);
    assert.deepEqual(written.sort(), [1, 4]);
    assert.equal(raw.released, 1, 'the frame goes back to its pool once written');
    assert.equal(blocks.blocksWritten, 2);
    assert.equal(blocks.blocksZeroed, 3);
    assert.equal(blocks.bytesWritten, 2 * BLOCK);
    assert.deepEqual(
      [0, 1, 2, 4, 5, 7].map((i) => blocks.touched(i)),
      [false, true, true, true, false, true],
    );
    const content = await fs.readFile(path);
    assert.deepEqual(content.subarray(BLOCK, 2 * BLOCK), data);
    assert.ok(content.subarray(2 * BLOCK, 4 * BLOCK).every((b) => b === 0));
    assert.deepEqual(content.subarray(4 * BLOCK, 5 * BLOCK), text);
    assert.ok(
      content.subarray(5 * BLOCK, 7 * BLOCK).every((b) => b === 0x11),
      'equal blocks are left alone',
    );
    blocks.endOfStream();
    assert.equal(blocks.applied, 8);
    const busy = blocks.takeBusyShare();
    assert.ok(busy >= 0 && busy <= 1);
  } finally {
    await disk.close();
  }
});

test('a write under way holds the watermark at its block; a failed write is reported', async () => {
  const path = `${dir}/slow.img`;
  await fs.writeFile(path, Buffer.alloc(4 * BLOCK));
  const disk = await openFile(path);
  let finishWrite!: () => void;
  disk.writev = () => new Promise<void>((resolve) => (finishWrite = resolve));
  const errors: Error[] = [];
  const blocks = new BlockWriter(disk, new BlockGeometry(4 * BLOCK, BLOCK), 0, { onWritten: () => undefined, onError: (e) => errors.push(e) });
  try {
    blocks.skip(0, 1);
    await blocks.write(pooledFrame(FrameType.Data, 1, randomBytes(BLOCK)));
    blocks.skip(2, 2);
    assert.equal(blocks.writing, true);
    assert.equal(blocks.watermark(), 1);
    finishWrite();
    await blocks.settle();
    assert.equal(blocks.writing, false);
    assert.equal(blocks.watermark(), 4);
    disk.writev = () => Promise.reject(new Error('EIO'));
    await blocks.write(pooledFrame(FrameType.Data, 3, randomBytes(BLOCK)));
    await blocks.settle();
    assert.deepEqual(
      errors.map((e) => e.message),
      ['EIO'],
    );
  } finally {
    await disk.close();
  }
});

test('without a disk (a dry run into a missing destination) nothing is written', async () => {
  const blocks = new BlockWriter(undefined, new BlockGeometry(2 * BLOCK, BLOCK), 0, { onWritten: () => assert.fail('no write'), onError: (e) => assert.fail(e) });
  await blocks.write(pooledFrame(FrameType.Data, 0, randomBytes(BLOCK)));
  await blocks.zero(1);
  await blocks.flushZeros();
  assert.equal(blocks.blocksWritten, 0);
});
