import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameParser } from './frame-parser.js';
import { FrameType, encodeHeader, type Frame } from './protocol.js';

test('FrameParser rebuilds frames split at any byte boundary', () => {
  const payload = Buffer.from('hello block');
  const wire = Buffer.concat([encodeHeader(FrameType.Data, 1, 2 ** 40 + 7, payload.length), payload, encodeHeader(FrameType.Same, 0, 3, 0), encodeHeader(FrameType.Ack, 0, 9, 0)]);
  for (let cut = 1; cut < wire.length; cut += 3) {
    const frames: Frame[] = [];
    const p = new FrameParser((f) => frames.push(f));
    for (let i = 0; i < wire.length; i += cut) p.push(wire.subarray(i, i + cut));
    assert.equal(frames.length, 3);
    assert.equal(frames[0]!.type, FrameType.Data);
    assert.equal(frames[0]!.flags, 1);
    assert.equal(frames[0]!.index, 2 ** 40 + 7);
    assert.equal(frames[0]!.payload.toString(), 'hello block');
    assert.equal(frames[1]!.type, FrameType.Same);
    assert.equal(frames[2]!.index, 9);
  }
});
