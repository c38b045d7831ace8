import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { alignedBuffer, alignedSharedMemory, isAligned, isAlignedView } from './aligned-memory.js';

test('aligned memory takes direct I/O where an ordinary Buffer is refused', (t) => {
  const file = `/var/tmp/ferry-aligned-${process.pid}.img`;
  fs.writeFileSync(file, Buffer.alloc(1 << 20));
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  } catch (e) {
    fs.rmSync(file);
    t.skip(`/var/tmp has no direct I/O, nothing to compare (${String(e)})`);
    return;
  }
  try {
    const mem = Buffer.from(alignedSharedMemory(1 << 20));
    assert.equal(mem.length, 1 << 20);
    mem.fill(7, 8192, 8192 + 4096);
    assert.equal(fs.writeSync(fd, mem.subarray(8192, 8192 + 4096), 0, 4096, 4096), 4096);
    assert.throws(() => fs.writeSync(fd, Buffer.alloc(1 << 20).subarray(16, 16 + 4096), 0, 4096, 0), /EINVAL/);
    const back = Buffer.from(alignedSharedMemory(4096));
    assert.equal(fs.readSync(fd, back, 0, 4096, 4096), 4096);
    assert.ok(back.subarray(0, 4096).equals(Buffer.alloc(4096, 7)));
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file);
  }
});

test('isAligned knows aligned offsets, and isAlignedView aligned memory from here at aligned offsets only', () => {
  assert.ok(isAligned(8192) && !isAligned(8192 + 512));
  const b = alignedBuffer(3 * 4096);
  assert.ok(isAlignedView(b));
  assert.ok(isAlignedView(b.subarray(4096)));
  assert.ok(!isAlignedView(b.subarray(100)));
  assert.ok(!isAlignedView(Buffer.alloc(8192)), 'an ordinary Buffer is not known aligned');
});
