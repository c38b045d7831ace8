import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { alignedSharedMemory } from './aligned-memory.js';
import { readBlock, readBlockSync } from './block-read.js';

test('a block is read with the direct descriptor for its aligned part and zero-padded past the end of the file', async () => {
  const file = `/var/tmp/ferry-block-read-${process.pid}.img`;
  const data = randomFillSync(Buffer.alloc(3 * 4096 + 700));
  fs.writeFileSync(file, data);
  const fd = fs.openSync(file, 'r');
  let direct: number | undefined;
  try {
    direct = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  } catch {
    direct = undefined; // no direct I/O on this filesystem: the plain descriptor alone
  }
  try {
    const view = new Uint8Array(alignedSharedMemory(4 * 4096), 0, 4 * 4096);
    view.fill(0xaa);
    readBlockSync({ fd: direct ?? fd, tailFd: fd }, view, 0);
    assert.ok(Buffer.from(view.subarray(0, data.length)).equals(data));
    assert.ok(view.subarray(data.length).every((b) => b === 0));
    // The same without blocking the thread, from an offset: the last two pages.
    view.fill(0xaa);
    await readBlock({ fd: direct ?? fd, tailFd: fd }, view.subarray(0, 2 * 4096), 2 * 4096);
    assert.ok(Buffer.from(view.subarray(0, 4096 + 700)).equals(data.subarray(2 * 4096)));
    assert.ok(view.subarray(4096 + 700, 2 * 4096).every((b) => b === 0));
  } finally {
    fs.closeSync(fd);
    if (direct !== undefined) fs.closeSync(direct);
    fs.rmSync(file);
  }
});
