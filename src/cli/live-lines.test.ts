import assert from 'node:assert/strict';
import { test } from 'node:test';
import { barSegment, columns, fitSegments, formatDuration, formatPair, formatRate, nameSegment, percent, progressBar, RateWindow, routeSegment, truncateMiddle, wrapWords } from './live-lines.js';

const MiB = 1 << 20;

test('fitSegments keeps a line that fits as it is', () => {
  assert.equal(
    fitSegments(
      [
        { text: 'a', priority: 0 },
        { text: 'b', priority: 1 },
      ],
      80,
    ),
    'a  b',
  );
});

test('fitSegments shortens, then drops, the segment with the highest priority number first', () => {
  const segs = [
    { text: 'mirror', priority: 0 },
    { text: ['guest writes 1.0 MiB/s', 'writes 1.0 MiB/s'], priority: 3 },
    { text: '200 MiB left', priority: 2 },
    { text: 'eta 5s', priority: 0 },
  ];
  assert.equal(fitSegments(segs, 80), 'mirror  guest writes 1.0 MiB/s  200 MiB left  eta 5s');
  assert.equal(fitSegments(segs, 46), 'mirror  writes 1.0 MiB/s  200 MiB left  eta 5s');
  assert.equal(fitSegments(segs, 40), 'mirror  200 MiB left  eta 5s');
  assert.equal(fitSegments(segs, 20), 'mirror  eta 5s');
});

test('fitSegments shortens a segment of priority 0 but never drops it, and cuts what still does not fit', () => {
  assert.equal(fitSegments([{ text: ['will not converge', 'no converge'], priority: 0 }], 12), 'no converge');
  assert.equal(fitSegments([{ text: 'a very long fixed text', priority: 0 }], 10), 'a very lo…');
});

test('fitSegments gives the width left over to flex segments, up to their maximum', () => {
  const line = fitSegments([{ text: 'disk', priority: 0 }, barSegment(0.5, 1, 10, 22), { text: '50%', priority: 0 }], 80);
  assert.equal(line, `disk  [${'█'.repeat(10)}${'░'.repeat(10)}]  50%`);
  const narrow = fitSegments([{ text: 'disk', priority: 0 }, barSegment(0.5, 1, 10, 22), { text: '50%', priority: 0 }], 25);
  assert.equal(columns(narrow), 25);
  assert.match(narrow, /^disk {2}\[█+░+\] {2}50%$/);
});

test('a flex segment that cannot have its minimum drops out', () => {
  assert.equal(fitSegments([{ text: 'eta 5s', priority: 0 }, barSegment(0.5, 1, 10, 40)], 12), 'eta 5s');
});

test('truncateMiddle keeps both ends of a name', () => {
  assert.equal(truncateMiddle('/var/lib/ferry/images/web-frontend-disk0.qcow2', 20), '/var/lib/f…sk0.qcow2');
  assert.equal(columns(truncateMiddle('/var/lib/ferry/images/web-frontend-disk0.qcow2', 20)), 20);
  assert.equal(truncateMiddle('short', 20), 'short');
  assert.equal(truncateMiddle('abc', 1), '…');
});

test('routeSegment cuts each side in its middle and keeps the arrow', () => {
  const from = 'hypervisor-rack-12-east.example.internal:/var/lib/ferry/images/web-frontend-disk0.qcow2';
  const to = 'hb:/x.img';
  const seg = routeSegment(from, to, 1);
  const s = seg.flex(40);
  assert.equal(columns(s), 40);
  assert.ok(s.endsWith(' -> hb:/x.img'), s);
  assert.equal(seg.flex(500).trimEnd(), `${from} -> ${to}`);
  const both = routeSegment(from, from, 1).flex(41);
  assert.equal(columns(both), 41);
  assert.match(both, /^hyper.*qcow2 -> hyper.*qcow2$/);
});

test('nameSegment pads to its width', () => {
  assert.equal(nameSegment('web1 lab-a -> lab-b', 1).flex(25), 'web1 lab-a -> lab-b      ');
});

test('progressBar fills its width, brackets included, whatever the fraction', () => {
  assert.equal(progressBar(0, 6), '[░░░░]');
  assert.equal(progressBar(1, 6), '[████]');
  assert.equal(progressBar(2, 6), '[████]');
  assert.equal(progressBar(Number.NaN, 6), '[░░░░]');
  assert.equal(progressBar(0.5, 2), '[]');
});

test('percent shows 100% only when done', () => {
  assert.equal(percent(0, 0), '  0%');
  assert.equal(percent(999, 1000), ' 99%');
  assert.equal(percent(1000, 1000), '100%');
});

test('formatPair shows both figures in the unit of the total, so growth of a few MiB shows', () => {
  assert.equal(formatPair(3 * MiB, 12.5 * MiB), '3.0/12.5 MiB');
  assert.equal(formatPair(460 * MiB, 1031 * MiB), '460/1031 MiB');
  assert.equal(formatPair(12.4 * 1024 * MiB, 20 * 1024 * MiB), '12.40/20.00 GiB');
});

test('formatRate shows the rate against the cap', () => {
  assert.equal(formatRate(18.74 * MiB, 20 * MiB), '18.7/20 MiB/s');
  assert.equal(formatRate(3.4 * MiB, 2.5 * MiB), '3.4/2.5 MiB/s');
  assert.equal(formatRate(3.4 * MiB), '3.4 MiB/s');
});

test('formatDuration reads as people say it', () => {
  assert.equal(formatDuration(0.2), '1s');
  assert.equal(formatDuration(42), '42s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(3720), '1h02m');
});

test('RateWindow measures the change over its window, once the readings span enough time', () => {
  const w = new RateWindow(5000, 900);
  w.add(0, 0);
  w.add(500, 10);
  assert.equal(w.rate(), undefined);
  w.add(1000, 20);
  assert.equal(w.rate(), 20);
  for (let t = 1250; t <= 10_000; t += 250) w.add(t, 20 + (t - 1000) * 0.1);
  // Only the last five seconds count: 100 per second there.
  assert.equal(Math.round(w.rate()!), 100);
  assert.ok(w.span() <= 5250);
});

test('wrapWords breaks a log line at spaces to fit the terminal, indenting what follows', () => {
  const warning = 'WARNING: The guest dirties 30.0 MiB of RAM per second, as fast as the 20.0 MiB/s the link carries: the migration will not converge.';
  const lines = wrapWords(warning, 40);
  for (const l of lines) assert.ok(columns(l) <= 40, l);
  assert.deepEqual(lines.slice(0, 2), ['WARNING: The guest dirties 30.0 MiB of', '  RAM per second, as fast as the 20.0']);
  assert.equal(lines.map((l) => l.trim()).join(' '), warning);
  assert.deepEqual(wrapWords('short', 40), ['short']);
  assert.deepEqual(wrapWords('a\nb', 40), ['a', '  b']);
  assert.deepEqual(wrapWords('abcdefghij', 4), ['abcd', '  ef', '  gh', '  ij']);
});
