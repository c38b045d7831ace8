import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { BlockGeometry } from './block-geometry.js';
import { DigestStreamer } from './digest-streamer.js';
import { DigestTable } from './digest-table.js';
import { FrameWriter } from './frame-writer.js';
import { LazyHashPool } from './lazy-hash-pool.js';
import { FrameType, decodeHashes, frameDigest } from './protocol.js';
import { frameSink, openFile, tempDir } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 4096;
let dir: string;
before(async () => (dir = await tempDir('digest-streamer')));
after(() => fs.rm(dir, { recursive: true, force: true }));

test('known digests go out in Hashes frames without reading; the others are read, hashed and sent one by one', async () => {
  const path = `${dir}/disk.img`;
  const data = randomBytes(6 * BLOCK);
  data.fill(0, 4 * BLOCK, 5 * BLOCK);
  await fs.writeFile(path, data);
  const disk = await openFile(path, false);
  const geometry = new BlockGeometry(data.length, BLOCK);
  const known = new DigestTable(geometry.count);
  const remembered = Buffer.alloc(16, 0xab); // not the file's: proves known blocks are not read
  known.set(1, remembered);
  known.set(2, undefined);
  const sink = frameSink();
  const destinationDigests = new DigestTable(geometry.count);
  const pool = new LazyHashPool(BLOCK, 8, 0);
  try {
    const streamer = new DigestStreamer({ disk, geometry, writer: new FrameWriter(sink.stream), known, destinationDigests, pool, window: 2, closed: () => false });
    await streamer.stream(1);
    await new Promise((r) => setImmediate(r));
    const frames = sink.frames;
    assert.deepEqual(
      frames.map((f) => [f.type, f.index]),
      [
        [FrameType.Hashes, 1],
        [FrameType.Hash, 3],
        [FrameType.Hash, 4],
        [FrameType.Hash, 5],
      ],
    );
    const run: Array<Buffer | undefined> = [];
    decodeHashes(frames[0]!.payload, (k, d) => (run[k] = d && Buffer.from(d)));
    assert.deepEqual(run, [remembered, undefined]);
    assert.deepEqual(frameDigest(frames[1]!), xxh128(data.subarray(3 * BLOCK, 4 * BLOCK)));
    assert.equal(frameDigest(frames[2]!), undefined, 'a zero block has no digest');
    assert.deepEqual(destinationDigests.digest(1), remembered);
    assert.equal(destinationDigests.has(0), false, 'blocks below the start are not streamed');
    assert.ok(destinationDigests.isZero(4));
    assert.deepEqual(destinationDigests.digest(5), xxh128(data.subarray(5 * BLOCK)));
  } finally {
    await pool.close();
    await disk.close();
  }
});

test('a missing destination (dry run) streams zeros; a closed connection stops the stream', async () => {
  const geometry = new BlockGeometry(3 * BLOCK, BLOCK);
  const sink = frameSink();
  const digests = new DigestTable(geometry.count);
  const pool = new LazyHashPool(BLOCK, 4, 0);
  await new DigestStreamer({ disk: undefined, geometry, writer: new FrameWriter(sink.stream), destinationDigests: digests, pool, window: 2, closed: () => false }).stream(0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    sink.frames.map((f) => [f.index, frameDigest(f)]),
    [
      [0, undefined],
      [1, undefined],
      [2, undefined],
    ],
  );
  assert.equal(pool.started, false, 'no threads for a disk nobody reads');

  const path = `${dir}/closed.img`;
  await fs.writeFile(path, randomBytes(3 * BLOCK));
  const disk = await openFile(path, false);
  const closedSink = frameSink();
  await new DigestStreamer({ disk, geometry, writer: new FrameWriter(closedSink.stream), destinationDigests: new DigestTable(3), pool, window: 2, closed: () => true }).stream(0);
  assert.equal(closedSink.frames.length, 0);
  await disk.close();
});
