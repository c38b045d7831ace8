import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { test } from 'node:test';
import { CompressionPolicy } from './compression.js';

const text = Buffer.from('ferry moves disks between hosts. '.repeat(40_000));

test('auto samples nothing while the link is not the limit', () => {
  const p = new CompressionPolicy('auto');
  assert.equal(p.maybeCompress(text), undefined);
  p.update(1e9, false);
  assert.equal(p.active, false);
});

test('auto turns on when a measured slow link is the limit', () => {
  const p = new CompressionPolicy('auto');
  p.update(1 << 20, true); // 1 MiB/s and the sender waits on the socket
  p.maybeCompress(text); // first block sampled
  p.update(1 << 20, true);
  assert.equal(p.active, true);
});

test('auto compresses compressible data on a slow link only', () => {
  const slow = new CompressionPolicy('auto', 1 << 20);
  slow.maybeCompress(text);
  slow.update(undefined, true);
  assert.equal(slow.active, true);
  const fast = new CompressionPolicy('auto', 100e9);
  fast.maybeCompress(text);
  fast.update(undefined, true);
  assert.equal(fast.active, false);
});

test('auto stays off for random data and none never compresses', () => {
  const p = new CompressionPolicy('auto', 1 << 20);
  assert.equal(p.maybeCompress(randomFillSync(Buffer.alloc(1 << 20))), undefined);
  p.update(undefined, true);
  assert.equal(p.active, false);
  assert.equal(new CompressionPolicy('none').maybeCompress(text), undefined);
  assert.ok(new CompressionPolicy('zstd').maybeCompress(text)!.length < text.length);
});
