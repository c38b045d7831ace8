import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DiskEndpoint } from '../storage/endpoint.js';
import { loadCheckpoint, removeCheckpoint, resumePoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';

process.env.FERRY_SYNC_STATE_DIR ??= `/tmp/ferry-checkpointer-test-${process.pid}`;

function fakeDisk(survives: boolean): DiskEndpoint & { flushes: number } {
  const d = { flushes: 0, writesSurviveProcessExit: survives, flush: async () => void d.flushes++ };
  return d as unknown as DiskEndpoint & { flushes: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('raw disks record written marks without flushing, and flush only now and then', async () => {
  const destination = `/tmp/ferry-checkpointer-raw-${process.pid}`;
  const disk = fakeDisk(true);
  const marks: number[] = [];
  const c = new Checkpointer(disk, {
    destination,
    sourceId: 's',
    size: 100,
    blockSize: 1,
    durableFrom: 0,
    writesSurviveProcessExit: true,
    recordEveryMs: 20,
    flushEveryMs: 1000,
    onRecorded: (m) => void marks.push(m),
    onError: (e) => assert.fail(e),
  });
  for (let mark = 1; mark <= 10; mark++) {
    c.maybeRecord(() => mark);
    await sleep(25);
  }
  await c.settle();
  assert.ok(marks.length >= 5, `recorded ${marks.length} times`);
  assert.equal(disk.flushes, 0);
  const saved = (await loadCheckpoint(destination))!;
  assert.equal(saved.durableBlocks, 0);
  assert.equal(resumePoint(saved), saved.writtenBlocks);
  assert.equal(resumePoint(saved, 'after-a-reboot'), 0);
  await c.recordNow(10, true);
  assert.equal(disk.flushes, 1);
  assert.equal((await loadCheckpoint(destination))!.durableBlocks, 10);
  await removeCheckpoint(destination);
});

test('disks behind a FUSE export flush at every record', async () => {
  const destination = `/tmp/ferry-checkpointer-fuse-${process.pid}`;
  const disk = fakeDisk(false);
  const c = new Checkpointer(disk, {
    destination,
    sourceId: 's',
    size: 100,
    blockSize: 1,
    durableFrom: 0,
    writesSurviveProcessExit: false,
    recordEveryMs: 10,
    onRecorded: () => undefined,
    onError: (e) => assert.fail(e),
  });
  await sleep(15);
  c.maybeRecord(() => 4);
  await c.settle();
  await c.recordNow(6, false);
  assert.equal(disk.flushes, 2);
  const saved = (await loadCheckpoint(destination))!;
  assert.equal(saved.durableBlocks, 6);
  assert.equal(resumePoint(saved, 'after-a-reboot'), 6);
  await removeCheckpoint(destination);
});
