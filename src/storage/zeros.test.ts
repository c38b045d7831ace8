import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAllZero } from './zeros.js';

test('isAllZero finds one non-zero byte anywhere, across and inside its 64 KiB steps', () => {
  const b = Buffer.alloc(200_000);
  assert.ok(isAllZero(b));
  for (const at of [0, 65_535, 65_536, 150_000, 199_999]) {
    b[at] = 1;
    assert.ok(!isAllZero(b), `byte ${at}`);
    b[at] = 0;
  }
  assert.ok(isAllZero(new Uint8Array(0)));
});

test('isAllZero reads only the view it is given, on memory of any kind', () => {
  const shared = new Uint8Array(new SharedArrayBuffer(64));
  shared[7] = 1;
  shared[48] = 1;
  assert.ok(isAllZero(shared.subarray(8, 48)));
  assert.ok(!isAllZero(shared.subarray(8, 49)));
});
