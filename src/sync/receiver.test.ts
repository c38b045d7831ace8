/**
 * The destination's preparation: checks, creation, resume point and
 * remembered digests, and the connection to the source, against real temp
 * files and a stand-in source listener on loopback.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { bootId, saveCheckpoint } from './checkpoint.js';
import { saveDigestCache } from './digest-cache.js';
import { DigestTable } from './digest-table.js';
import { FrameType } from './protocol.js';
import { startReceive, type ReceiveOptions } from './receiver.js';
import { framesFrom, tempDir, until } from './test-fixtures.js';

const BLOCK = 64 * 1024;
const SIZE = 16 * BLOCK;
let dir: string;
before(async () => {
  dir = await tempDir('receiver');
  process.env.FERRY_SYNC_STATE_DIR = `${dir}/state`;
});
after(() => fs.rm(dir, { recursive: true, force: true }));

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  await new Promise((r) => server.close(r));
  return address.port;
}

function receiveOptions(path: string, port: number, over: Partial<ReceiveOptions> = {}): ReceiveOptions {
  return {
    path,
    source: { host: '127.0.0.1', port, token: 't0ken' },
    sourceSize: SIZE,
    sourceFormat: 'raw',
    sourceId: 'src-1',
    blockSize: BLOCK,
    resume: false,
    dryRun: false,
    force: false,
    direct: false,
    hashThreads: 0,
    ...over,
  };
}

test('a destination smaller than the source is refused with a hint', async () => {
  const path = `${dir}/small.img`;
  await fs.writeFile(path, Buffer.alloc(SIZE / 2));
  await assert.rejects(startReceive(receiveOptions(path, await closedPort())), (e: FerryError) => e.code === 'TARGET_TOO_SMALL' && !!e.hint);
});

test('a missing image is created at the source size; an unreachable source fails the session with a hint', async () => {
  const path = `${dir}/new.img`;
  const session = await startReceive(receiveOptions(path, await closedPort()));
  assert.equal(session.plan.created, true);
  assert.equal(session.plan.resumeFrom, 0);
  assert.equal((await fs.stat(path)).size, SIZE);
  await assert.rejects(session.result, (e: FerryError) => e.code === 'UNREACHABLE' && /check that the destination host can reach/.test(e.hint ?? ''));
});

test('a dry run creates nothing', async () => {
  const path = `${dir}/dry.img`;
  const session = await startReceive(receiveOptions(path, await closedPort(), { dryRun: true }));
  assert.equal(session.plan.created, false);
  await session.result.catch(() => undefined);
  await assert.rejects(fs.stat(path));
});

test('a resume starts from the checkpoint of the same source; remembered digests are offered unless --rehash', async () => {
  const path = `${dir}/old.img`;
  await fs.writeFile(path, Buffer.alloc(SIZE));
  const checkpoint = {
    version: 2 as const,
    destination: path,
    sourceId: 'src-1',
    size: SIZE,
    blockSize: BLOCK,
    writtenBlocks: 6,
    durableBlocks: 4,
    bootId: bootId(),
    updatedAt: new Date().toISOString(),
  };
  await saveCheckpoint(checkpoint, false);
  const port = await closedPort();
  const resumed = await startReceive(receiveOptions(path, port, { resume: true }));
  assert.equal(resumed.plan.resumeFrom, 6);
  await resumed.result.catch(() => undefined);
  const other = await startReceive(receiveOptions(path, port, { resume: true, sourceId: 'another' }));
  assert.equal(other.plan.resumeFrom, 0);
  await other.result.catch(() => undefined);

  await saveDigestCache(path, BLOCK, DigestTable.zeros(SIZE / BLOCK));
  const cached = await startReceive(receiveOptions(path, port));
  assert.equal(cached.plan.cachedBlocks, SIZE / BLOCK);
  await cached.result.catch(() => undefined);
  const rehashed = await startReceive(receiveOptions(path, port, { rehash: true }));
  assert.equal(rehashed.plan.cachedBlocks, 0);
  await rehashed.result.catch(() => undefined);
});

test('the destination connects and says the token first; a source that hangs up leaves an error saying to resume', async () => {
  const path = `${dir}/joined.img`;
  await fs.writeFile(path, Buffer.alloc(SIZE));
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const session = await startReceive(receiveOptions(path, address.port));
  const socket = await accepted;
  const frames = framesFrom(socket);
  await until(() => frames.length > 0);
  assert.equal(frames[0]!.type, FrameType.Join);
  assert.equal(frames[0]!.payload.toString(), 't0ken');
  socket.destroy();
  server.close();
  await assert.rejects(session.result, (e: FerryError) => e.code === 'ABORTED' && /--resume/.test(e.hint ?? ''));
});

test('cancel drops the connection and settles the session', async () => {
  const path = `${dir}/cancelled.img`;
  await fs.writeFile(path, Buffer.alloc(SIZE));
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const session = await startReceive(receiveOptions(path, address.port));
  await session.cancel();
  await assert.rejects(session.result, (e: FerryError) => e.code === 'ABORTED');
  server.close();
});
