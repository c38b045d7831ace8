import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { BlockGeometry } from './block-geometry.js';
import { BlockWriter } from './block-writer.js';
import { DigestTable } from './digest-table.js';
import { FrameWriter } from './frame-writer.js';
import { LazyHashPool } from './lazy-hash-pool.js';
import { FrameType, frameDigest } from './protocol.js';
import { ReadBackVerifier } from './read-back-verifier.js';
import { frameSink, openFile, pooledFrame, tempDir } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 4096;
let dir: string;
before(async () => (dir = await tempDir('read-back')));
after(() => fs.rm(dir, { recursive: true, force: true }));

test('what this run and resumed runs wrote is read back from the disk and its digests sent; untouched blocks are not', async () => {
  const path = `${dir}/disk.img`;
  const old = randomBytes(6 * BLOCK);
  await fs.writeFile(path, old);
  const disk = await openFile(path);
  const geometry = new BlockGeometry(old.length, BLOCK);
  const blocks = new BlockWriter(disk, geometry, 1, { onWritten: () => undefined, onError: (e) => assert.fail(e) });
  const pool = new LazyHashPool(BLOCK, 8, 0);
  const sink = frameSink();
  const resultDigests = new DigestTable(geometry.count);
  const verifier = new ReadBackVerifier({
    disk,
    geometry,
    resumeFrom: 1,
    blocks,
    writer: new FrameWriter(sink.stream),
    resultDigests,
    pool,
    window: 4,
    closed: () => false,
    onError: (e) => assert.fail(e),
  });
  try {
    const fresh = randomBytes(BLOCK);
    await blocks.write(pooledFrame(FrameType.Data, 3, fresh));
    await blocks.zero(4);
    await blocks.settle();
    await blocks.flushZeros();
    verifier.readSoon(3); // not a direct disk: read back at the end only
    await verifier.settle();
    await verifier.readBack(true);
    await new Promise((r) => setImmediate(r));
    // Block 0 below the resume point, 3 written, 4 zeroed; 1, 2 and 5 were compared equal, not written.
    assert.deepEqual(
      sink.frames.map((f) => [f.type, f.index]),
      [
        [FrameType.VerifyHash, 0],
        [FrameType.VerifyHash, 3],
        [FrameType.VerifyHash, 4],
      ],
    );
    assert.deepEqual(frameDigest(sink.frames[0]!), xxh128(old.subarray(0, BLOCK)));
    assert.deepEqual(frameDigest(sink.frames[1]!), xxh128(fresh));
    assert.equal(frameDigest(sink.frames[2]!), undefined);
    assert.deepEqual(resultDigests.digest(3), xxh128(fresh));
    assert.equal(resultDigests.has(1), false);
    assert.equal(pool.started, false, 'a few blocks are read back without starting threads');
  } finally {
    await pool.close();
    await disk.close();
  }
});
