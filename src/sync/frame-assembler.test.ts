import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FrameAssembler, type PooledFrame } from './frame-assembler.js';
import { FrameType, encodeHeader } from './protocol.js';
import { isAlignedView } from '../storage/aligned-memory.js';

const BLOCK = 256 * 1024;

function frame(type: FrameType, index: number, payload: Buffer, flags = 0): Buffer {
  return Buffer.concat([encodeHeader(type, flags, index, payload.length), payload]);
}

/** Feeds `stream` through one reused buffer of `readSize` bytes, as a socket's onread does. */
function feed(a: FrameAssembler, stream: Buffer, readSize: number): void {
  const buf = Buffer.alloc(readSize);
  for (let at = 0; at < stream.length; at += readSize) {
    const n = stream.copy(buf, 0, at, Math.min(stream.length, at + readSize));
    a.push(buf, n);
    buf.fill(0xaa); // the next read overwrites it: nothing may point into it
  }
}

test('frames come out whole and in order, whatever the read sizes, and survive the read buffer being reused', () => {
  const payloads = [randomBytes(BLOCK), Buffer.from('{"a":1}'), Buffer.alloc(0), randomBytes(100_000), randomBytes(BLOCK + 10)];
  const stream = Buffer.concat(payloads.map((p, i) => frame(FrameType.Data, i * 3, p, i % 2)));
  for (const readSize of [1, 7, 16, 4096, 65536, 300_000]) {
    const a = new FrameAssembler(BLOCK);
    const got: PooledFrame[] = [];
    a.onFrame = (f) => got.push(f);
    feed(a, stream, readSize);
    assert.equal(got.length, payloads.length, `read size ${readSize}`);
    got.forEach((f, i) => {
      assert.equal(f.type, FrameType.Data);
      assert.equal(f.index, i * 3);
      assert.equal(f.flags, i % 2);
      assert.deepEqual(f.payload, payloads[i], `frame ${i}, read size ${readSize}`);
      assert.deepEqual(Buffer.concat(f.parts), payloads[i]);
    });
  }
});

test('block buffers given back are reused: the pool grows to what is in use at once, not to what crossed', () => {
  const a = new FrameAssembler(BLOCK);
  const held: PooledFrame[] = [];
  a.onFrame = (f) => held.push(f);
  const blocks = Array.from({ length: 40 }, () => randomBytes(BLOCK));
  for (const [i, b] of blocks.entries()) {
    feed(a, frame(FrameType.Data, i, b), 65536);
    // The consumer keeps at most three frames at a time.
    while (held.length > 3) {
      const f = held.shift()!;
      assert.deepEqual(f.payload, blocks[f.index]);
      f.release();
      f.release(); // twice is harmless
    }
  }
  assert.equal(a.allocated, 4);
});

/** Feeds `stream` as a socket with `onread: { buffer: () => a.nextBuffer() }` does, each read at most `readSize`; returns how many bytes landed in the scratch buffer. */
function feedInPlace(a: FrameAssembler, stream: Buffer, readSize: number): number {
  let at = 0;
  let scratch = 0;
  let first: Uint8Array | undefined;
  while (at < stream.length) {
    const buf = a.nextBuffer();
    first ??= buf;
    const n = stream.copy(buf, 0, at, Math.min(stream.length, at + readSize, at + buf.length));
    if (buf === first) scratch += n;
    a.received(buf, n);
    if (buf === first) buf.fill(0xaa); // the next read overwrites it
    at += n;
  }
  return scratch;
}

test('a block is read in place into an aligned pooled buffer; headers and small payloads come through the scratch buffer', () => {
  const blocks = Array.from({ length: 6 }, () => randomBytes(BLOCK));
  const small = [Buffer.from('{"ready":1}'), randomBytes(2000)];
  const stream = Buffer.concat([
    frame(FrameType.Hello, 0, small[0]!),
    ...blocks.map((b, i) => frame(FrameType.Data, i, b)),
    frame(FrameType.Hashes, 9, small[1]!),
    frame(FrameType.Data, 10, blocks[0]!.subarray(0, BLOCK - 5)),
  ]);
  for (const readSize of [1000, 65536, 1 << 20]) {
    const a = new FrameAssembler(BLOCK);
    const got: PooledFrame[] = [];
    a.onFrame = (f) => got.push(f);
    const scratch = feedInPlace(a, stream, readSize);
    assert.equal(got.length, 9, `read size ${readSize}`);
    assert.deepEqual(got[0]!.payload, small[0]);
    blocks.forEach((b, i) => {
      assert.deepEqual(got[1 + i]!.payload, b, `block ${i}, read size ${readSize}`);
      assert.ok(isAlignedView(got[1 + i]!.payload), 'aligned for direct I/O');
    });
    assert.deepEqual(got[7]!.payload, small[1]);
    assert.deepEqual(got[8]!.payload, blocks[0]!.subarray(0, BLOCK - 5));
    // Of 7 blocks (1.75 MiB) at most a scratch buffer's worth each went through the copy.
    assert.ok(scratch < stream.length / 2, `${scratch} of ${stream.length} bytes copied at read size ${readSize}`);
  }
});
