import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConvergenceWatch } from './convergence.js';
import type { MigrationEvent, RamProgress } from './progress.js';

const MiB = 1024 * 1024;

function watch(): { w: ConvergenceWatch; events: MigrationEvent[]; records: Array<[string, Record<string, unknown>]>; at: (ms: number) => void } {
  let now = 0;
  const events: MigrationEvent[] = [];
  const records: Array<[string, Record<string, unknown>]> = [];
  const w = new ConvergenceWatch({ listener: (e) => events.push(e), journal: { record: (step: string, data: Record<string, unknown> = {}) => void records.push([step, data]) } as never }, () => now);
  return { w, events, records, at: (ms) => (now = ms) };
}

const ram = (dirtyMiB: number, linkMiB: number, iterations = 3): RamProgress => ({
  transferred: 0,
  remaining: 64 * MiB,
  total: 256 * MiB,
  dirtyRate: dirtyMiB * MiB,
  throughput: linkMiB * MiB,
  iterations,
});

test('a guest dirtying RAM as fast as the link carries it for 2 s is warned of once, with what to do, in the journal too', () => {
  const { w, events, records, at } = watch();
  for (const t of [0, 500, 1000, 1500]) {
    at(t);
    assert.equal(w.observe(ram(9.5, 10)), false, `not yet at ${t} ms`);
  }
  at(2000);
  assert.equal(w.observe(ram(12, 10)), true);
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.ok(e.type === 'warning' && e.code === 'NOT_CONVERGING');
  assert.match(e.message, /dirties 12\.0 MiB\/s of RAM, as fast as the 10\.0 MiB\/s the link carries/);
  assert.match(e.message, /Raise --bandwidth, pass --auto-converge/);
  assert.deepEqual(records, [['warning', { code: 'NOT_CONVERGING', dirtyRate: 12 * MiB, throughput: 10 * MiB }]]);
  at(10_000);
  assert.equal(w.observe(ram(20, 10)), false, 'only once');
  assert.equal(events.length, 1);
});

test('a poll where the link gets ahead starts the count again', () => {
  const { w, events, at } = watch();
  at(0);
  w.observe(ram(10, 10));
  at(1500);
  w.observe(ram(10, 10));
  at(1800);
  w.observe(ram(5, 10));
  at(3000);
  assert.equal(w.observe(ram(10, 10)), false);
  at(4900);
  assert.equal(w.observe(ram(10, 10)), false);
  at(5000);
  assert.equal(w.observe(ram(10, 10)), true);
  assert.equal(events.length, 1);
});

test('no verdict during the first pass, without figures, or without RAM progress', () => {
  const { w, events, at } = watch();
  for (const [t, r] of [
    [0, ram(50, 10, 1)],
    [3000, ram(50, 10, 1)],
    [6000, ram(0, 10)],
    [9000, ram(50, 0)],
    [12000, undefined],
    [15000, ram(50, 10, 1)],
  ] as const) {
    at(t);
    assert.equal(w.observe(r), false);
  }
  assert.equal(events.length, 0);
});
