import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockGeometry } from './block-geometry.js';

test('a disk whose size is not a multiple of the block size ends with a short block', () => {
  const g = new BlockGeometry(10_000, 4096);
  assert.equal(g.count, 3);
  assert.deepEqual(
    [0, 1, 2].map((i) => g.lengthOf(i)),
    [4096, 4096, 10_000 - 8192],
  );
  assert.equal(g.offsetOf(2), 8192);
});

test('a disk of whole blocks has no short block, and an empty disk none at all', () => {
  const g = new BlockGeometry(3 * 4096, 4096);
  assert.equal(g.count, 3);
  assert.equal(g.lengthOf(2), 4096);
  assert.equal(new BlockGeometry(0, 4096).count, 0);
});
