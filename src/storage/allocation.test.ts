import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blocksWithData, parseMap } from './allocation.js';

test('parseMap keeps only data ranges and merges neighbours', () => {
  const ranges = parseMap([
    { start: 0, length: 100, data: true, zero: false },
    { start: 100, length: 50, data: true, zero: false },
    { start: 150, length: 50, data: false, zero: true },
    { start: 200, length: 10, data: true, zero: true },
    { start: 210, length: 90, data: true, zero: false },
  ]);
  assert.deepEqual(ranges, [
    { start: 0, length: 150 },
    { start: 210, length: 90 },
  ]);
});

test('blocksWithData marks every block a data range touches', () => {
  const flags = blocksWithData(
    [
      { start: 1000, length: 2 },
      { start: 4096 * 3, length: 1 },
    ],
    4096 * 4 + 10,
    4096,
  );
  assert.deepEqual([...flags], [1, 0, 0, 1, 0]);
});
