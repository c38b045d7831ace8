/**
 * The sender's listener: only the destination that says the session's
 * token is served; anyone else connecting is dropped without a byte of
 * the disk. Real files, sender and receiver in this process, on loopback.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import { inspectDisk } from '../storage/image-info.js';
import { FrameType, encodeHeader } from './protocol.js';
import { receiveFrom } from './test-fixtures.js';
import { startSend } from './sender.js';

const BLOCK = 64 * 1024;
const dir = `/var/tmp/ferry-sender-test-${process.pid}`;
const src = `${dir}/src.img`;
const dst = `${dir}/dst.img`;

before(async () => {
  await fs.mkdir(`${dir}/state`, { recursive: true });
  process.env.FERRY_SYNC_STATE_DIR = `${dir}/state`;
  await fs.writeFile(src, randomBytes(BLOCK * 16));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Connects, says `words` as a Join frame, and returns everything received until the sender hangs up. */
async function intrude(port: number, words: string): Promise<Buffer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise((r) => socket.once('connect', r));
  const token = Buffer.from(words);
  socket.write(Buffer.concat([encodeHeader(FrameType.Join, 0, 0, token.length), token]));
  const got: Buffer[] = [];
  socket.on('data', (d: Buffer) => got.push(d));
  await new Promise((r) => socket.once('close', r));
  return Buffer.concat(got);
}

test('a connection with the wrong token is dropped unserved; the destination with the right one gets the disk', async () => {
  const info = await inspectDisk(src);
  const sending = await startSend(
    { path: src, address: '127.0.0.1', sourceId: 'test', blockSize: BLOCK, compress: 'none', resume: false, dryRun: false, verify: true, fsync: true, hashThreads: 1, info },
    () => undefined,
  );
  assert.equal((await intrude(sending.port, 'f'.repeat(sending.token.length))).length, 0);
  assert.equal((await intrude(sending.port, 'not even the length')).length, 0);
  const session = await receiveFrom(sending, dst, info.size!, BLOCK);
  const sent = await sending.result;
  await session.result;
  assert.equal(sent.verified, true);
  assert.deepEqual(await fs.readFile(dst), await fs.readFile(src));
});

test('a destination that never connects ends the send with a clear error, and the source is released', async () => {
  const sending = await startSend(
    { path: src, address: '127.0.0.1', sourceId: 'test', blockSize: BLOCK, compress: 'none', resume: false, dryRun: false, verify: true, fsync: true, hashThreads: 1, connectTimeoutMs: 300 },
    () => undefined,
  );
  await assert.rejects(sending.result, (e: Error & { code?: string }) => e.code === 'UNREACHABLE' && /No destination connected/.test(e.message));
  // The listener is gone.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: sending.port }, () => resolve(s.destroy()));
      s.on('error', reject);
    }),
  );
});
