import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameParser } from './frame-parser.js';
import { FrameFlag, FrameType, decodeHashes, encodeHashes, encodeHeader, frameDigest, type Frame } from './protocol.js';

test('a Hashes payload carries digests and zero blocks in order', () => {
  const a = Buffer.alloc(16, 0xaa);
  const b = Buffer.alloc(16, 0x01);
  const payload = encodeHashes([a, undefined, b, undefined]);
  assert.equal(payload.length, 4 * 17);
  const got: Array<string | undefined> = [];
  decodeHashes(payload, (k, d) => (got[k] = d?.toString('hex')));
  assert.deepEqual(got, [a.toString('hex'), undefined, b.toString('hex'), undefined]);
});

test('frameDigest reads the zero-block flag as no digest', () => {
  const digest = Buffer.alloc(16, 0x5a);
  const frames: Frame[] = [];
  const parser = new FrameParser((f) => frames.push(f));
  parser.push(Buffer.concat([encodeHeader(FrameType.Hash, 0, 1, 16), digest, encodeHeader(FrameType.Hash, FrameFlag.ZeroBlock, 2, 0)]));
  assert.deepEqual(frameDigest(frames[0]!), digest);
  assert.equal(frameDigest(frames[1]!), undefined);
});
