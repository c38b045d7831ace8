import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadCheckpoint, removeCheckpoint, saveCheckpoint } from './checkpoint.js';

test('a checkpoint survives a reload and is gone after removal', async () => {
  const destination = `/tmp/ferry-checkpoint-test-${process.pid}`;
  const c = { version: 1 as const, destination, sourceId: 'h:/a', size: 10, blockSize: 4, confirmedBlocks: 2, updatedAt: new Date().toISOString() };
  await saveCheckpoint(c);
  assert.deepEqual(await loadCheckpoint(destination), c);
  await removeCheckpoint(destination);
  assert.equal(await loadCheckpoint(destination), undefined);
});
