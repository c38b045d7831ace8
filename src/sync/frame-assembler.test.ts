import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FrameAssembler, type PooledFrame } from './frame-assembler.js';
import { FrameType, encodeHeader } from './protocol.js';

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
