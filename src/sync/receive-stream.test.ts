/**
 * The destination's side of a connection, driven frame by frame by a
 * stand-in source on a loopback socket pair, into a real temp file.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { FerryError } from '../util/errors.js';
import { loadCheckpoint } from './checkpoint.js';
import { loadDigestCache } from './digest-cache.js';
import { FrameAssembler } from './frame-assembler.js';
import { FrameWriter } from './frame-writer.js';
import { FrameType, frameDigest, type Frame } from './protocol.js';
import { serveSource, type StreamOptions } from './receive-stream.js';
import { framesFrom, openFile, socketPair, tempDir, until } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 64 * 1024;
let dir: string;
before(async () => {
  dir = await tempDir('receive-stream');
  process.env.FERRY_SYNC_STATE_DIR = `${dir}/state`;
});
after(() => fs.rm(dir, { recursive: true, force: true }));

async function connection(path: string, over: Partial<StreamOptions> = {}) {
  const [destinationSocket, sourceSocket] = await socketPair();
  const input = new FrameAssembler(BLOCK);
  destinationSocket.on('data', (d: Buffer) => input.push(d, d.length));
  const disk = await openFile(path);
  const size = (await fs.stat(path)).size;
  const options: StreamOptions = { path, sourceId: 'src', size, blockSize: BLOCK, dryRun: false, hashThreads: 0, token: 'tok', resumeFrom: 0, durableFrom: 0, ...over };
  const result = serveSource(destinationSocket, input, options, disk).finally(() => disk.close());
  result.catch(() => undefined);
  const heard = framesFrom(sourceSocket);
  const say = new FrameWriter(sourceSocket);
  const next = async (type: number): Promise<Frame> => {
    await until(() => heard.some((f) => f.type === type));
    return heard.splice(
      heard.findIndex((f) => f.type === type),
      1,
    )[0]!;
  };
  return { result, say, next, heard, sourceSocket, destinationSocket, size };
}

test('a whole session: Join, Hello, digests, blocks applied, read back, verdict, Done, digests remembered', async () => {
  const path = `${dir}/dst.img`;
  const old = randomBytes(4 * BLOCK);
  await fs.writeFile(path, old);
  const { result, say, next, heard, size } = await connection(path);
  assert.equal((await next(FrameType.Join)).payload.toString(), 'tok');
  await say.sendJson(FrameType.Hello, { token: 'tok', size, blockSize: BLOCK, sourceId: 'src', resume: false, dryRun: false, verify: true });
  assert.deepEqual(JSON.parse((await next(FrameType.Ready)).payload.toString()), { startBlock: 0 });
  await until(() => heard.filter((f) => f.type === FrameType.Hash).length === 4);
  assert.deepEqual(frameDigest(heard.find((f) => f.type === FrameType.Hash && f.index === 2)!), xxh128(old.subarray(2 * BLOCK, 3 * BLOCK)));
  const fresh = randomBytes(BLOCK);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  await say.send(FrameType.Same, 0, count);
  await say.send(FrameType.Zero, 1);
  await say.send(FrameType.SourceDigest, 2, xxh128(fresh));
  await say.send(FrameType.Data, 2, fresh);
  await say.send(FrameType.Same, 3, count);
  await say.sendJson(FrameType.End, { verify: true, fsync: true });
  await until(() => heard.filter((f) => f.type === FrameType.VerifyHash).length === 2);
  assert.deepEqual(
    heard.filter((f) => f.type === FrameType.VerifyHash).map((f) => f.index),
    [1, 2],
  );
  await say.sendJson(FrameType.Verdict, { ok: true, mismatches: [] });
  await next(FrameType.Done);
  const got = await result;
  assert.deepEqual(got, { directIo: false, bytesWritten: BLOCK, blocksWritten: 1, blocksZeroed: 1, verified: true, verifyMismatches: [] });
  const content = await fs.readFile(path);
  assert.deepEqual(content.subarray(2 * BLOCK, 3 * BLOCK), fresh);
  assert.ok(content.subarray(BLOCK, 2 * BLOCK).every((b) => b === 0));
  const remembered = await loadDigestCache(path, BLOCK, 4);
  assert.ok(remembered, 'a durable, verified copy remembers its digests');
  assert.deepEqual(remembered.digest(0), xxh128(old.subarray(0, BLOCK)));
  assert.deepEqual(remembered.digest(2), xxh128(fresh));
  assert.ok(remembered.isZero(1));
});

test('a source that drops mid-way leaves a checkpoint of what was applied and an error saying to resume', async () => {
  const path = `${dir}/dropped.img`;
  await fs.writeFile(path, randomBytes(4 * BLOCK));
  const { result, say, next, sourceSocket, destinationSocket, size } = await connection(path);
  await next(FrameType.Join);
  await say.sendJson(FrameType.Hello, { token: 'tok', size, blockSize: BLOCK, sourceId: 'src', resume: false, dryRun: false, verify: false });
  await next(FrameType.Ready);
  await say.send(FrameType.Data, 0, randomBytes(BLOCK));
  await say.send(FrameType.Zero, 1);
  // Both frames read by the destination before the source goes: closing with
  // them still in flight could reset the connection and lose them.
  await until(() => destinationSocket.bytesRead >= sourceSocket.bytesWritten);
  sourceSocket.destroy();
  await assert.rejects(result, (e: FerryError) => e.code === 'ABORTED' && /--resume/.test(e.hint ?? '') && /after 2 of 4 blocks/.test(e.message));
  const checkpoint = await loadCheckpoint(path);
  assert.equal(checkpoint?.writtenBlocks, 2);
});

test('a Hello with the wrong token is refused', async () => {
  const path = `${dir}/refused.img`;
  await fs.writeFile(path, randomBytes(BLOCK));
  const { result, say, next, size } = await connection(path);
  await next(FrameType.Join);
  await say.sendJson(FrameType.Hello, { token: 'nope', size, blockSize: BLOCK, sourceId: 'src', resume: false, dryRun: false, verify: false });
  await assert.rejects(result, (e: FerryError) => e.code === 'AGENT_ERROR' && /wrong session token/.test(e.message));
});
