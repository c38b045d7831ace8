import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { FrameParser } from './frame-parser.js';
import { FrameWriter } from './frame-writer.js';
import { FrameFlag, FrameType, HEADER_SIZE, frameDigest, type Frame } from './protocol.js';

/** A socket stand-in that keeps what is written and takes `highWaterMark` bytes before asking to wait. */
function sink(highWaterMark = 1 << 20): { stream: Writable; frames: () => Frame[]; writes: () => number } {
  const chunks: Buffer[] = [];
  let writes = 0;
  const stream = new Writable({
    highWaterMark,
    writev(pieces, done) {
      writes++;
      for (const p of pieces) chunks.push(Buffer.from(p.chunk as Uint8Array));
      setImmediate(done);
    },
  });
  const frames = (): Frame[] => {
    const out: Frame[] = [];
    new FrameParser((f) => out.push(f)).push(Buffer.concat(chunks));
    return out;
  };
  return { stream, frames, writes: () => writes };
}

test('frames written in one tick reach the socket together, in order, and are counted', async () => {
  const { stream, frames, writes } = sink();
  const writer = new FrameWriter(stream);
  const digest = Buffer.alloc(16, 7);
  await Promise.all([writer.sendDigest(FrameType.Hash, 0, digest), writer.sendDigest(FrameType.Hash, 1, undefined), writer.sendJson(FrameType.Ready, { startBlock: 3 })]);
  await new Promise((r) => setImmediate(r));
  const got = frames();
  assert.deepEqual(
    got.map((f) => [f.type, f.index]),
    [
      [FrameType.Hash, 0],
      [FrameType.Hash, 1],
      [FrameType.Ready, 0],
    ],
  );
  assert.deepEqual(frameDigest(got[0]!), digest);
  assert.equal(got[1]!.flags, FrameFlag.ZeroBlock);
  assert.deepEqual(JSON.parse(got[2]!.payload.toString()), { startBlock: 3 });
  assert.equal(writer.bytesWritten, 3 * HEADER_SIZE + 16 + got[2]!.payload.length);
  assert.equal(writes(), 1, 'one corked write for the tick');
});

test('a send waits for the socket to drain, and its payload is reported free once flushed', async () => {
  const { stream, frames } = sink(1024);
  const writer = new FrameWriter(stream);
  let flushed = false;
  let resolved = false;
  const sending = writer.send(FrameType.Data, 5, Buffer.alloc(4096, 1), 0, () => (flushed = true)).then(() => (resolved = true));
  assert.equal(resolved, false);
  await sending;
  assert.equal(flushed, true);
  assert.equal(frames()[0]!.payload.length, 4096);
});

test('a send on a destroyed socket fails', async () => {
  const { stream } = sink();
  stream.destroy();
  await assert.rejects(new FrameWriter(stream).send(FrameType.Same, 0));
});
