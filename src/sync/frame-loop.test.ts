import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PooledFrame } from './frame-assembler.js';
import { FrameLoop, type Pausable } from './frame-loop.js';
import { FrameType } from './protocol.js';

function frame(type: FrameType, index: number, released: number[]): PooledFrame {
  const payload = Buffer.alloc(0);
  return { type, flags: 0, index, payload, parts: [payload], release: () => released.push(index) };
}

class FakeSocket implements Pausable {
  paused = false;
  pauses = 0;
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  isPaused(): boolean {
    return this.paused;
  }
}

test('frames are applied one at a time in order; a long queue pauses the socket until it is short again', async () => {
  const socket = new FakeSocket();
  const applied: number[] = [];
  const released: number[] = [];
  let active = 0;
  const loop = new FrameLoop(
    socket,
    async (f) => {
      assert.equal(++active, 1, 'never two at once');
      await new Promise((r) => setImmediate(r));
      applied.push(f.index);
      active--;
    },
    (e) => assert.fail(e),
  );
  for (let i = 0; i < 300; i++) loop.push(frame(i % 2 ? FrameType.Data : FrameType.Same, i, released));
  assert.equal(socket.paused, true);
  assert.equal(socket.pauses, 1);
  await loop.whenIdle();
  assert.deepEqual(
    applied,
    Array.from({ length: 300 }, (_, i) => i),
  );
  assert.equal(socket.paused, false);
  // Data frames are the handler's to release.
  assert.deepEqual(
    released,
    applied.filter((i) => i % 2 === 0),
  );
});

test('a failing frame stops the loop and is reported', async () => {
  const errors: Error[] = [];
  const applied: number[] = [];
  const loop = new FrameLoop(
    new FakeSocket(),
    async (f) => {
      if (f.index === 1) throw new Error('disk gone');
      applied.push(f.index);
    },
    (e) => errors.push(e),
  );
  for (let i = 0; i < 3; i++) loop.push(frame(FrameType.Same, i, []));
  await loop.whenIdle();
  assert.deepEqual(applied, [0]);
  assert.deepEqual(
    errors.map((e) => e.message),
    ['disk gone'],
  );
});
