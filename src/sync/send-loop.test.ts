import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { BlockGeometry } from './block-geometry.js';
import { CompressionPolicy } from './compression.js';
import { DestinationChannel } from './destination-channel.js';
import { HashPool } from './hash-pool.js';
import { FrameFlag, FrameType } from './protocol.js';
import { SendLoop } from './send-loop.js';
import type { SourceBlock } from './source-blocks.js';
import { initialProgress } from './sync-progress.js';
import { framesFrom, socketPair, until } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 4096;

async function* each(blocks: SourceBlock[]): AsyncGenerator<SourceBlock> {
  yield* blocks;
}

test('equal blocks go in one Same run, zeros as Zero, changed data as its digest then its bytes', async () => {
  const [source, destination] = await socketPair();
  const heard = framesFrom(destination);
  const geometry = new BlockGeometry(6 * BLOCK, BLOCK);
  const channel = new DestinationChannel(source, { blockCount: geometry.count, lostError: () => new FerryError('ABORTED', 'lost'), onAck: () => undefined });
  const pool = HashPool.create(BLOCK, 4, 0);
  const progress = initialProgress(geometry.size, geometry.count);
  const loop = new SendLoop({ geometry, dryRun: false, verify: true, pool, channel, policy: new CompressionPolicy('zstd'), progress });
  const same = randomBytes(BLOCK);
  const changed = Buffer.from('ferry '.repeat(BLOCK)).subarray(0, BLOCK);
  // The destination: 0-1 equal, 2 data (to be zeroed), 3 other data, 4-5 zeros.
  const digests = channel.destinationDigests;
  digests.set(0, xxh128(same));
  digests.set(1, xxh128(same));
  digests.set(2, xxh128(randomBytes(BLOCK)));
  digests.set(3, xxh128(randomBytes(BLOCK)));
  digests.set(4, undefined);
  digests.set(5, undefined);
  const slot = await pool.acquire();
  changed.copy(slot.buf);
  const blocks: SourceBlock[] = [
    { index: 0, zero: false, length: BLOCK, digest: xxh128(same) }, // decided from a scan's digest: no bytes
    { index: 1, zero: false, length: BLOCK, digest: xxh128(same) },
    { index: 2, zero: true, length: BLOCK },
    { index: 3, zero: false, length: BLOCK, digest: xxh128(changed), slot },
    { index: 4, zero: true, length: BLOCK },
    { index: 5, zero: true, length: BLOCK },
  ];
  await loop.run(each(blocks));
  await until(() => heard.length >= 5);
  assert.deepEqual(
    heard.map((f) => [f.type, f.index]),
    [
      [FrameType.Same, 0],
      [FrameType.Zero, 2],
      [FrameType.SourceDigest, 3],
      [FrameType.Data, 3],
      [FrameType.Same, 4],
    ],
  );
  assert.equal(heard[0]!.payload.readUInt32BE(0), 2);
  assert.equal(heard[4]!.payload.readUInt32BE(0), 2);
  assert.equal(heard[3]!.flags, FrameFlag.Compressed, 'zstd mode compresses what shrinks');
  assert.deepEqual(
    [0, 2, 3, 4].map((i) => loop.sent(i)),
    [false, true, true, false],
  );
  assert.equal(progress.blocksChanged, 2);
  assert.equal(progress.blocksZero, 3);
  assert.equal(progress.bytesChanged, BLOCK);
  assert.equal(progress.bytesCompared, 6 * BLOCK);
  assert.deepEqual(loop.sourceDigests.digest(3), xxh128(changed));
  source.destroy();
  destination.destroy();
});

test('a dry run sends nothing but counts what it would; a block to send that was never read is a bug, not a silent skip', async () => {
  const [source, destination] = await socketPair();
  const heard = framesFrom(destination);
  const geometry = new BlockGeometry(2 * BLOCK, BLOCK);
  const channel = new DestinationChannel(source, { blockCount: 2, lostError: () => new FerryError('ABORTED', 'lost'), onAck: () => undefined });
  channel.destinationDigests.set(0, Buffer.alloc(16, 1));
  channel.destinationDigests.set(1, Buffer.alloc(16, 1));
  const pool = HashPool.create(BLOCK, 2, 0);
  const progress = initialProgress(geometry.size, 2);
  const dry = new SendLoop({ geometry, dryRun: true, verify: false, pool, channel, policy: new CompressionPolicy('none'), progress });
  assert.equal(dry.needsDigest(0), true, 'data on the destination: the digest decides');
  const slot = await pool.acquire();
  await dry.run(each([{ index: 0, zero: false, length: BLOCK, digest: Buffer.alloc(16, 2), slot }]));
  assert.equal(progress.blocksChanged, 1);
  const live = new SendLoop({ geometry, dryRun: false, verify: false, pool, channel, policy: new CompressionPolicy('none'), progress });
  await assert.rejects(live.run(each([{ index: 1, zero: false, length: BLOCK, digest: Buffer.alloc(16, 2) }])), (e: FerryError) => e.code === 'INTERNAL');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(heard.length, 0);
  source.destroy();
  destination.destroy();
});
