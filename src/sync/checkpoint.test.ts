import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootId, loadCheckpoint, removeCheckpoint, resumePoint, saveCheckpoint, type Checkpoint } from './checkpoint.js';

const base = (destination: string): Checkpoint => ({
  version: 2,
  destination,
  sourceId: 'h:/a',
  size: 10,
  blockSize: 4,
  writtenBlocks: 2,
  durableBlocks: 1,
  bootId: bootId(),
  updatedAt: new Date().toISOString(),
});

test('a checkpoint survives a reload and is gone after removal', async () => {
  const destination = `/tmp/ferry-checkpoint-test-${process.pid}`;
  const c = base(destination);
  await saveCheckpoint(c, false);
  assert.deepEqual(await loadCheckpoint(destination), c);
  await saveCheckpoint({ ...c, durableBlocks: 2 }, true);
  assert.equal((await loadCheckpoint(destination))?.durableBlocks, 2);
  await removeCheckpoint(destination);
  assert.equal(await loadCheckpoint(destination), undefined);
});

test('written blocks count on the same boot only; after a reboot only durable ones do', () => {
  const c = { ...base('/x'), writtenBlocks: 7, durableBlocks: 3 };
  assert.match(c.bootId, /^[0-9a-f-]{36}$/);
  assert.equal(resumePoint(c), 7);
  assert.equal(resumePoint(c, 'another-boot'), 3);
});
