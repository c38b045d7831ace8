import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Throttle } from './throttle.js';

test('Throttle holds a sender to its rate', async () => {
  const t = new Throttle(4 << 20); // 4 MiB/s, 1 MiB burst
  const started = performance.now();
  for (let i = 0; i < 12; i++) await t.take(256 << 10); // 3 MiB
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds > 0.4 && seconds < 0.9, `took ${seconds} s`);
});

test('Throttle without a rate never waits', async () => {
  const t = new Throttle();
  // Without a rate every take settles before anything scheduled after it (a wait would be a timer).
  for (let i = 0; i < 1000; i++) {
    const first = await Promise.race([t.take(1 << 20).then(() => 'took'), new Promise((r) => setImmediate(() => r('waited')))]);
    assert.equal(first, 'took', `take ${i} waited`);
  }
});
