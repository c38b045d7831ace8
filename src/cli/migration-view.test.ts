import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MigrationProgress } from '../drivers/progress.js';
import { columns } from './live-lines.js';
import { MigrationWatch, migrationStatusLine, renderMigrationLines } from './migration-view.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** A mirror a quarter of a second per step: 20 MiB/s copied, the guest adding 1 MiB/s to the total. */
function mirrorWatch(devices: string[], steps: number, options: { title?: string; cap?: number } = {}): MigrationWatch {
  const w = new MigrationWatch(options);
  for (let i = 0; i <= steps; i++) {
    const p: MigrationProgress = {
      phase: 'mirror',
      disks: devices.map((device) => ({ device, done: i * 5 * MiB, total: GiB + i * 0.25 * MiB, ready: false })),
    };
    w.progress(p, i * 250);
  }
  return w;
}

function assertFits(lines: string[], width: number): void {
  for (const l of lines) assert.ok(columns(l) <= width, `${columns(l)} columns > ${width}: "${l}"`);
}

for (const width of [80, 120]) {
  test(`the migration view fits ${width} columns, long host and disk names included`, () => {
    const w = mirrorWatch(['virtio-disk0', 'scsi0-0-0-0-a-very-long-device-name-from-libvirt'], 24, {
      title: 'web-frontend-01 hypervisor-rack-12-east.example.internal -> hypervisor-rack-14-west.example.internal',
      cap: 40 * MiB,
    });
    const lines = renderMigrationLines(w.state(), width);
    assertFits(lines, width);
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /eta \d/);
    assert.match(lines[1]!, /^ virtio-disk0 +\[█*░+\] +\d+%/);
    assert.match(lines[2]!, /^ scsi0.*…/);
  });
}

test('the overall line counts every disk, throughput against the cap, the guest writes and an ETA', () => {
  const lines = renderMigrationLines(mirrorWatch(['vda', 'vdb'], 24, { cap: 40 * MiB }).state(), 120);
  // Two disks of 1 GiB + 6 MiB each, 120 MiB copied of each: 40 MiB/s moved, 2 MiB/s added, 1820 MiB left at a net 38 MiB/s.
  assert.equal(lines[0], 'mirror  240/2060 MiB of disks  1.78 GiB left  40.0/40 MiB/s  guest writes 2.0 MiB/s  eta 48s');
});

test('a disk line says why its total grew', () => {
  const lines = renderMigrationLines(mirrorWatch(['vda'], 24).state(), 120);
  assert.match(lines[1]!, /120\/1030 MiB {2}\+6\.0 MiB written by the guest during the copy$/);
  const narrow = renderMigrationLines(mirrorWatch(['vda'], 24).state(), 60);
  assertFits(narrow, 60);
  assert.match(narrow[1]!, /\+6\.0 MiB/);
});

test('the RAM phase shows RAM with its pass and dirty rate, and counts it in the overall line', () => {
  const w = new MigrationWatch();
  for (let i = 0; i <= 20; i++) {
    w.progress(
      {
        phase: 'memory',
        disks: [{ device: 'vda', done: GiB, total: GiB, ready: true }],
        ram: { transferred: i * 5 * MiB, remaining: 512 * MiB - i * 4 * MiB, total: 512 * MiB, dirtyRate: 4 * MiB, throughput: 20 * MiB, iterations: i < 10 ? 1 : 2 },
      },
      i * 250,
    );
  }
  const lines = renderMigrationLines(w.state(), 120);
  assertFits(lines, 120);
  assert.match(lines[0]!, /^memory {2}1124\/1556 MiB {2}432\.0 MiB left {2}20\.0 MiB\/s {2}guest writes 0\.0 MiB\/s {2}RAM dirtied 4\.0 MiB\/s {2}eta 27s$/);
  assert.match(lines[1]!, /^ vda .*100%.*in sync$/);
  assert.match(lines[2]!, /^ RAM .*100\/532 MiB {2}pass 2: resends pages the guest dirtied$/);
});

test('the RAM to come is counted before its phase when the controller gives its size', () => {
  const w = new MigrationWatch();
  w.progress({ phase: 'mirror', disks: [{ device: 'vda', done: 0, total: GiB, ready: false }], ramSize: 512 * MiB }, 0);
  const lines = renderMigrationLines(w.state(), 80);
  assert.match(lines[0]!, /^mirror {2}0\/1536 MiB/);
  assert.match(lines[2]!, /^ RAM .*after the disks$/);
});

test('writes that outpace the link replace the ETA with the reason', () => {
  const w = new MigrationWatch({ cap: 10 * MiB });
  for (let i = 0; i <= 20; i++) w.progress({ phase: 'mirror', disks: [{ device: 'vda', done: i * 2.5 * MiB, total: GiB + i * 2.5 * MiB, ready: false }] }, i * 250);
  assert.match(renderMigrationLines(w.state(), 120)[0]!, /no eta: the guest writes as fast as the link copies$/);
  assert.match(renderMigrationLines(w.state(), 60)[0]!, /no eta.*$/);
  assertFits(renderMigrationLines(w.state(), 60), 60);
});

test("the controller's will-not-converge warning shows on the overall line until the switch-over", () => {
  const w = mirrorWatch(['vda'], 8);
  w.warning('NOT_CONVERGING');
  assert.match(renderMigrationLines(w.state(), 80)[0]!, /will not converge$/);
  w.phase('switchover');
  const line = renderMigrationLines(w.state(), 80)[0]!;
  assert.doesNotMatch(line, /converge|eta/);
  assert.match(line, /^switchover/);
});

test('nothing is drawn before the first progress', () => {
  assert.deepEqual(renderMigrationLines(new MigrationWatch().state(), 80), []);
  assert.equal(migrationStatusLine(new MigrationWatch().state()), undefined);
});

test('the status line for a pipe has the overall figures and every disk', () => {
  const line = migrationStatusLine(mirrorWatch(['vda', 'vdb'], 24, { cap: 40 * MiB }).state())!;
  assert.equal(
    line,
    'mirror, 240/2060 MiB of disks, 1.78 GiB left, 40.0/40 MiB/s, guest writes 2.0 MiB/s, eta 48s; ' +
      'vda 11% 120/1030 MiB (+6.0 MiB written by the guest during the copy); vdb 11% 120/1030 MiB (+6.0 MiB written by the guest during the copy)',
  );
});

test('once the target took the VM over, the view shows everything across and no rates', () => {
  const w = new MigrationWatch();
  for (let i = 0; i <= 8; i++) {
    w.progress(
      {
        phase: 'memory',
        disks: [{ device: 'vda', done: 64 * MiB, total: 64 * MiB, ready: true }],
        ram: { transferred: i * MiB, remaining: 10 * MiB, total: 128 * MiB, dirtyRate: MiB, throughput: 4 * MiB, iterations: 3 },
      },
      i * 250,
    );
  }
  w.phase('switchover');
  assert.equal(renderMigrationLines(w.state(), 80)[0], 'switchover  72.0/82.0 MiB  10.0 MiB left');
  w.phase('finish');
  const lines = renderMigrationLines(w.state(), 80);
  assert.equal(lines[0], 'finish  82.0/82.0 MiB  0 B left');
  assert.match(lines[2]!, /^ RAM .*100% {2}18\.0\/18\.0 MiB/);
});
