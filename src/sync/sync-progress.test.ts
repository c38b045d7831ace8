import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProgressReporter, initialProgress, type SyncProgress } from './sync-progress.js';

test('the reporter sends copies on its ticker and on demand, refreshed first, and stops', async () => {
  const progress = initialProgress(10 << 20, 10);
  const seen: SyncProgress[] = [];
  let sent = 0;
  const reporter = new ProgressReporter(
    progress,
    performance.now() - 1000,
    (p) => (p.bytesSent = sent += 100),
    (p) => seen.push(p),
    10,
  );
  await new Promise((r) => setTimeout(r, 35));
  progress.bytesCompared = 5;
  reporter.report();
  reporter.stop();
  const count = seen.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(seen.length, count, 'no report after stop');
  assert.ok(count >= 2);
  const last = seen[count - 1]!;
  assert.equal(last.bytesCompared, 5);
  assert.equal(last.bytesSent, 100 * count);
  assert.ok(last.seconds >= 1);
  assert.notEqual(last, progress, 'a copy, not the live figures');
  assert.equal(seen[0]!.bytesCompared, 0);
});
