/**
 * Disks on LVM logical volumes, moved into LVs ferry makes on the target:
 * lab-a and lab-b each have volume groups on loop devices (their LVM sees
 * only their own), and an LV is reached at /dev/VG/LV through a loop device
 * over its extents, this kernel having no device-mapper. The test guest
 * writes records on an LV without pause while it moves.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labHost, nsenterPrefix } from '../../src/lab/lab.js';
import { labVolumeGroup } from '../../src/lab/lvm.js';
import { cleanVm, counter, ferry, ferryHeldAt, killVm, labVmPaths, startGuest, useLab, vmPid, waitForCounter } from './harness.js';
import { cleanDomain, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

/** A VG of this name is on both hosts (a move without --create-lv lands in it); VGB only on lab-b. */
const SHARED = 'ferrylvs';
const VGB = 'ferrylvb';
const MiB = 2 ** 20;

before(async () => {
  for (const [host, vg] of [
    ['lab-a', SHARED],
    ['lab-b', SHARED],
    ['lab-b', VGB],
  ] as const) {
    const h = await labHost(host);
    await labVolumeGroup({ ...h, enter: nsenterPrefix(h.pid) }, vg, 64);
  }
});

/** A fresh source LV on lab-a, active at /dev/VG/LV. */
async function sourceLv(lv: string, sizeBytes = 16 * MiB): Promise<string> {
  await a.call('volume.removeLv', { vg: SHARED, lv });
  return (await a.call('volume.createLv', { vg: SHARED, lv, sizeBytes })).path;
}

async function removeLvs(lv: string): Promise<void> {
  await a.call('volume.removeLv', { vg: SHARED, lv });
  for (const vg of [SHARED, VGB]) await b.call('volume.removeLv', { vg, lv });
}

type Report = { status: string; error?: { code: string; message: string; hint?: string }; source_running?: boolean; disks?: Array<{ target: { path: string; lv?: Record<string, unknown> } }> };

async function migrate(vm: string, extra: string[] = []): Promise<Report> {
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...extra]);
  return JSON.parse(r.stdout) as Report;
}

test('a QEMU VM on an LV moves live into a new LV in the VG --create-lv names, and loses no record', async () => {
  const vm = 'lv-qemu';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await removeLvs('lvq');
  const disk = await sourceLv('lvq');
  await startGuest(a, { name: vm, disks: [disk] });

  // A VG the target lacks is refused before anything is made there.
  const missing = await migrate(vm, ['--create-lv', 'nosuchvg']);
  assert.equal(missing.status, 'failed');
  assert.equal(missing.error?.code, 'NOT_FOUND');
  assert.match(missing.error!.message, /--create-lv nosuchvg: host "lab-b" has no volume group "nosuchvg"/);
  assert.match(missing.error!.hint ?? '', /ferrylvb.*--disk-map/);

  const r = await migrate(vm, ['--create-lv', VGB]);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const target = `/dev/${VGB}/lvq`;
  assert.deepEqual(r.disks?.[0]?.target.lv, { vg: VGB, name: 'lvq', size_bytes: 16 * MiB, created: true });
  assert.equal(r.disks?.[0]?.target.path, target);
  assert.equal((await b.call('volume.lv', { path: target }))?.sizeBytes, 16 * MiB);
  assert.equal(await vmPid(a, vm), undefined, 'source QEMU stopped');
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  // The target QEMU runs on the LV, by its /dev/VG/LV name.
  const pid = await vmPid(b, vm);
  assert.ok(pid);
  assert.ok((await b.call('process.holding', { path: target })).pids.length > 0, 'the target QEMU holds the LV open');

  await killVm(b, vm);
  const check = await b.call('lab.checkRecords', { disks: [target], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  assert.ok(check.lastReportedSeq >= n);
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await removeLvs('lvq');
});

test('a move whose target QEMU is killed removes the LV it made and leaves the VM running on the source', async () => {
  const vm = 'lv-fail';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await removeLvs('lvf');
  const disk = await sourceLv('lvf', 8 * MiB);
  await startGuest(a, { name: vm, disks: [disk] });
  const target = `/dev/${VGB}/lvf`;
  const held = await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--create-lv', VGB], 'target-started', async () => {
    assert.ok(await b.call('volume.lv', { path: target }), 'the LV was made before the target QEMU started');
    const pid = await vmPid(b, vm);
    assert.ok(pid, 'the incoming QEMU runs');
    await b.call('qemu.kill', { pid, signal: 'SIGKILL' });
  });
  const r = JSON.parse(held.stdout) as Report;
  assert.equal(r.status, 'failed', JSON.stringify(r));
  assert.equal(r.source_running, true);
  assert.equal(await b.call('volume.lv', { path: target }), null, 'the LV ferry made is gone');
  assert.equal((await b.call('file.stat', { path: target })).exists, false, 'and its /dev link');
  await waitForCounter(a, vm, (await counter(a, vm)) + 5);
  await cleanVm(a, vm);
  await removeLvs('lvf');
});

test('libvirt: a domain on an LV moves live into an LV of the same VG name on the target, without a flag', async () => {
  const vm = 'lv-virt';
  await cleanDomain([a, b], vm);
  await removeLvs('lvl');
  const disk = await sourceLv('lvl');
  await startDomain(a, vm, ['--disk', disk]);

  const r = await migrate(vm);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.deepEqual(r.disks?.[0]?.target.lv, { vg: SHARED, name: 'lvl', size_bytes: 16 * MiB, created: true });
  assert.equal(await domainState('lab-b', vm), 'running');
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  await b.call('libvirt.destroy', { domain: vm });
  const check = await b.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  await cleanDomain([a, b], vm);
  await removeLvs('lvl');
});
