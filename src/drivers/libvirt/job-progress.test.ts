import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DiskPlan } from '../driver.js';
import { diskProgress, ramProgress } from './job-progress.js';
import type { DomainJobInfo } from './virsh-output.js';

const MiB = 1024 * 1024;
const plan = (device: string, virtualSize: number): DiskPlan => ({ disk: { device, virtualSize } }) as DiskPlan;

/** As libvirt reports a job while the disks copy: the RAM's figures are all zeros. */
const mirroring: DomainJobInfo = { type: 'unbounded', diskTotal: 58 * MiB, diskProcessed: 16 * MiB, memoryTotal: 0, memoryProcessed: 0, memoryRemaining: 0, other: {} };

test("while the disks copy, libvirt's zero RAM figures are no RAM progress: the view counts the guest's RAM as still to come", () => {
  assert.equal(ramProgress(mirroring), undefined);
  assert.equal(ramProgress({ type: 'unbounded', other: {} }), undefined);
  assert.deepEqual(diskProgress(mirroring, [plan('vda', 64 * MiB)]), [{ device: 'vda', done: 16 * MiB, total: 58 * MiB, ready: false }]);
});

test('once the RAM copies: its figures, the dirty rate in bytes, and the disks in sync', () => {
  const job: DomainJobInfo = {
    ...mirroring,
    diskProcessed: 58 * MiB,
    memoryTotal: 256 * MiB,
    memoryProcessed: 90 * MiB,
    memoryRemaining: 10 * MiB,
    memoryDirtyPagesPerSecond: 256,
    memoryPageSize: 4096,
    memoryBytesPerSecond: 100 * MiB,
    memoryIteration: 2,
  };
  assert.deepEqual(ramProgress(job), { transferred: 90 * MiB, remaining: 10 * MiB, total: 256 * MiB, dirtyRate: MiB, throughput: 100 * MiB, iterations: 2 });
  assert.deepEqual(diskProgress(job, [plan('vda', 64 * MiB)]), [{ device: 'vda', done: 58 * MiB, total: 58 * MiB, ready: true }]);
});

test('libvirt counts the disks together: one line for several, their virtual sizes before it gives a total, none without a disk to copy', () => {
  const early: DomainJobInfo = { type: 'unbounded', other: {} };
  assert.deepEqual(diskProgress(early, [plan('vda', 48 * MiB), plan('vdb', 32 * MiB)]), [{ device: 'vda+vdb', done: 0, total: 80 * MiB, ready: false }]);
  assert.deepEqual(diskProgress(mirroring, []), []);
});
