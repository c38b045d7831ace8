import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SyncProgress } from '../sync/sender.js';
import { columns } from './live-lines.js';
import { renderSyncLines, syncStatusLine, SyncWatch } from './sync-view.js';

const MiB = 1 << 20;

function report(seconds: number, over: Partial<SyncProgress> = {}): SyncProgress {
  return {
    phase: 'compare',
    bytesTotal: 1536 * MiB,
    bytesCompared: seconds * 100 * MiB,
    bytesSent: seconds * 20 * MiB,
    bytesChanged: seconds * 20 * MiB,
    blocksTotal: 1536,
    blocksChanged: seconds * 20,
    blocksZero: 0,
    blocksResumed: 0,
    blocksConfirmed: seconds * 10,
    bytesVerified: 0,
    bytesToVerify: 0,
    compressing: false,
    seconds,
    ...over,
  };
}

function watchFor(seconds: number, init: ConstructorParameters<typeof SyncWatch>[0] = {}): SyncWatch {
  const w = new SyncWatch(init);
  for (let t = 0; t <= seconds * 4; t++) w.progress(report(t / 4));
  return w;
}

const longRoute = {
  from: 'hypervisor-rack-12-east.example.internal:/var/lib/ferry/images/web-frontend-01-disk0.qcow2',
  to: 'hypervisor-rack-14-west.example.internal:/dev/vg-fast-nvme/web-frontend-01-disk0',
};

for (const width of [80, 120]) {
  test(`the sync view fits ${width} columns, with long host and path names`, () => {
    const lines = renderSyncLines(watchFor(3, { route: longRoute, cap: 20 * MiB }).state(), width);
    assert.equal(lines.length, 2);
    for (const l of lines) assert.ok(columns(l) <= width, `${columns(l)} > ${width}: ${l}`);
    assert.match(lines[0]!, /comparing? {2}300\/1536 MiB .*eta 13s$/);
    assert.match(lines[1]!, /^ compare {2}\[█+░+\] {2} 19%/);
  });
}

test('at 120 columns the overall line names both ends and the send rate against the cap', () => {
  const [overall] = renderSyncLines(watchFor(3, { route: { from: 'ha:/var/tmp/a.img', to: 'hb:/var/tmp/b.img' }, cap: 20 * MiB }).state(), 120);
  assert.equal(overall, 'ha:/var/tmp/a.img -> hb:/var/tmp/b.img  comparing  300/1536 MiB  1.21 GiB left  sent 60.0 MiB at 20.0/20 MiB/s  eta 13s');
});

test('the verify phase measures its own rate and ETA', () => {
  const w = watchFor(3);
  for (let t = 0; t <= 8; t++) w.progress(report(3 + t / 4, { phase: 'verify', bytesToVerify: 60 * MiB, bytesVerified: t * 5 * MiB }));
  const [overall, bar] = renderSyncLines(w.state(), 80);
  assert.equal(overall, 'verifying  40.0/60.0 MiB  20.0 MiB left  reads 20.0 MiB/s  eta 1s');
  assert.match(bar!, /^ verify {2}/);
});

test('the plain line keeps the figures scripts read, with an ETA', () => {
  assert.equal(syncStatusLine(watchFor(3).state()), 'compare: 300.0 MiB of 1.50 GiB compared, 60.0 MiB sent, 60 blocks changed, 30 blocks confirmed, 100.0 MiB/s, eta 13s');
  assert.equal(syncStatusLine(new SyncWatch().state()), undefined);
});
