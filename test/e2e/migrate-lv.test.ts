/**
 * Disks on LVM logical volumes, moved into LVs ferry makes on the target:
 * lab-a and lab-b each have volume groups on loop devices (their LVM sees
 * only their own), and an LV is reached at /dev/VG/LV through a loop device
 * over its extents, this kernel having no device-mapper. The test guest
 * writes records on an LV without pause while it moves.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labHostRemoveVolumeGroup, labVirsh } from '../../src/lab/lab.js';
import { cleanVm, counter, ferry, ferryHeldAt, killVm, labVmPaths, startGuest, startHeldMove, stateDir, until, useLab, vmPid, waitForCounter } from './harness.js';
import { cleanDomain, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

/** A VG of this name is on both hosts (a move without --create-lv lands in it); VGB only on lab-b. */
const SHARED = 'ferrylvs';
const VGB = 'ferrylvb';
const MiB = 2 ** 20;

const VOLUME_GROUPS = [
  ['lab-a', SHARED],
  ['lab-b', SHARED],
  ['lab-b', VGB],
] as const;

/** The lab hosts' volume groups, made once (useLab's hook brings the lab up first, so they are made by the first test). */
let volumeGroups: Promise<void> | undefined;
function labVolumeGroups(): Promise<void> {
  volumeGroups ??= (async () => {
    for (const [host, vg] of VOLUME_GROUPS) {
      const r = await ferry(['lab', 'vg', host, vg, '--size', '64']);
      assert.equal(r.code, 0, r.stderr);
    }
  })();
  return volumeGroups;
}

// Two hosts' VGs of one name make the machine's own LVM warn on every call (sync-lvm.test.ts reads its output): gone with this file.
after(async () => {
  if (!volumeGroups) return;
  for (const [host, vg] of VOLUME_GROUPS) await labHostRemoveVolumeGroup(host, vg);
});

/** A fresh source LV on lab-a, active at /dev/VG/LV. */
async function sourceLv(lv: string, sizeBytes = 16 * MiB): Promise<string> {
  await labVolumeGroups();
  await a.call('volume.removeLv', { vg: SHARED, lv });
  return (await a.call('volume.createLv', { vg: SHARED, lv, sizeBytes })).path;
}

/** A fresh start for a test's VM on LV `lv`: no VM of that name on either host, no such LV; a new source LV, its path returned. */
async function freshLvVm(vm: string, lv: string, sizeBytes?: number): Promise<string> {
  await cleanLvVm(vm, lv);
  return sourceLv(lv, sizeBytes);
}

/** Removes the test's VM from both hosts and its LVs. */
async function cleanLvVm(vm: string, lv: string): Promise<void> {
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await removeLvs(lv);
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

test('a QEMU VM on an LV moves live into a new LV in the VG --create-lv names, and loses no record; --delete-source removes the source LV', async () => {
  const vm = 'lv-qemu';
  const disk = await freshLvVm(vm, 'lvq');
  await startGuest(a, { name: vm, disks: [disk] });

  // A VG the target lacks is refused before anything is made there.
  const missing = await migrate(vm, ['--create-lv', 'nosuchvg']);
  assert.equal(missing.status, 'failed');
  assert.equal(missing.error?.code, 'NOT_FOUND');
  assert.match(missing.error!.message, /--create-lv nosuchvg: host "lab-b" has no volume group "nosuchvg"/);
  assert.match(missing.error!.hint ?? '', /ferrylvb.*--disk-map/);

  const r = await migrate(vm, ['--create-lv', VGB, '--delete-source']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const target = `/dev/${VGB}/lvq`;
  // --delete-source: the source's LV goes, once the target owns the VM.
  assert.equal(await a.call('volume.lv', { path: disk }), null, `the source LV ${disk} was removed`);
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
  await cleanLvVm(vm, 'lvq');
});

test('ferry killed as --delete-source begins to remove the source LV: the VM runs on the target, the source LV is kept whole, and ferry recover removes nothing', async () => {
  const vm = 'lv-del';
  const disk = await freshLvVm(vm, 'lvd');
  await startGuest(a, { name: vm, disks: [disk] });
  const held = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--create-lv', VGB, '--delete-source'], 'source-disk-deleting');
  await held.held();
  process.kill(held.child.pid!, 'SIGKILL');
  await held.done;
  assert.ok(
    held.entries().some((e) => e.step === 'committed'),
    'past the commit point',
  );
  assert.ok(await vmPid(b, vm), 'the VM runs on the target');
  assert.equal(await vmPid(a, vm), undefined);
  const n = await waitForCounter(b, vm, (await counter(b, vm)) + 5);
  const recover = await ferry(['recover', held.id()!, '--json']);
  assert.equal(recover.code, 0, recover.stderr);
  assert.deepEqual((JSON.parse(recover.stdout) as Array<{ runs_on: string[] }>)[0]?.runs_on, ['lab-b'], recover.stdout);
  assert.equal((await a.call('volume.lv', { path: disk }))?.sizeBytes, 16 * MiB, 'a recovery never deletes: the source LV is whole');

  await killVm(b, vm);
  const check = await b.call('lab.checkRecords', { disks: [`/dev/${VGB}/lvd`], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  await cleanLvVm(vm, 'lvd');
});

test('a QEMU VM whose disk is a qcow2 on an LV (as oVirt keeps them) moves live into a new LV of the same VG name holding a qcow2, every record intact', async () => {
  const vm = 'lv-qcow2';
  const disk = await freshLvVm(vm, 'lvqc', 24 * MiB);
  await a.call('system.run', { file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', disk, '16M'] });
  await startGuest(a, { name: vm, disks: [disk] });

  const r = await migrate(vm);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const target = `/dev/${SHARED}/lvqc`;
  assert.deepEqual(r.disks?.[0]?.target.lv, { vg: SHARED, name: 'lvqc', size_bytes: 24 * MiB, created: true });
  assert.equal((r.disks?.[0]?.target as { format?: string }).format, 'qcow2');
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  await killVm(b, vm);
  // A qcow2 on the new LV, whole: its header, tables and every record the guest reported.
  const info = JSON.parse((await b.call('system.run', { file: 'qemu-img', args: ['info', '--output=json', target] })).stdout) as { format: string; 'virtual-size': number };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], 16 * MiB);
  const imageCheck = await b.call('system.run', { file: 'qemu-img', args: ['check', target] });
  assert.match(imageCheck.stdout, /No errors were found/, imageCheck.stdout);
  const check = await b.call('lab.checkRecords', { disks: [target], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  await cleanLvVm(vm, 'lvqc');
});

test('a move whose target QEMU, or whose controller, is killed removes the LV it made and leaves the VM running on the source', async () => {
  const vm = 'lv-fail';
  const disk = await freshLvVm(vm, 'lvf', 8 * MiB);
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

  // ferry itself killed once the LV is made: the target's agent, alone, removes it.
  await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--create-lv', VGB], 'created', async (pid) => {
    assert.ok(await b.call('volume.lv', { path: target }), 'the LV was made');
    process.kill(pid, 'SIGKILL');
  });
  await until('the lone target agent to remove the LV', async () => ((await b.call('volume.lv', { path: target })) === null ? true : undefined));
  assert.equal((await b.call('file.stat', { path: target })).exists, false);
  await waitForCounter(a, vm, (await counter(a, vm)) + 5);
  await cleanVm(a, vm);
  await removeLvs('lvf');
});

test('libvirt: a domain on an LV moves live into an LV of the same VG name on the target, without a flag, after ferry recover removed the one a killed move made', async () => {
  const vm = 'lv-virt';
  await cleanDomain([a, b], vm);
  await removeLvs('lvl');
  const disk = await sourceLv('lvl');
  await startDomain(a, vm, ['--disk', disk]);

  // ferry killed once it has made the LV: `ferry recover` removes it from what the journal claimed.
  const onB = `/dev/${SHARED}/lvl`;
  await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json'], 'created', async (pid) => {
    assert.ok(await b.call('volume.lv', { path: onB }), 'the LV was made');
    process.kill(pid, 'SIGKILL');
  });
  const latest = readdirSync(`${stateDir}/journal`)
    .filter((f) => f.includes(`-migrate-${vm}-`))
    .sort()
    .at(-1)!
    .replace(/\.jsonl$/, '');
  const recovered = await ferry(['recover', latest, '--json']);
  assert.equal(recovered.code, 0, recovered.stdout + recovered.stderr);
  assert.equal(await b.call('volume.lv', { path: onB }), null, 'ferry recover removed the LV');
  assert.ok(await a.call('volume.lv', { path: disk }), 'and not the source LV of that name');

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

test('libvirt: a domain on an LV moves offline into a new LV in the VG --create-lv names, its XML naming that LV', async () => {
  const vm = 'lv-cold';
  await cleanDomain([a, b], vm);
  await removeLvs('lvc');
  const disk = await sourceLv('lvc');
  await startDomain(a, vm, ['--disk', disk]);
  await waitForCounter(a, vm, (await counter(a, vm)) + 5);

  const r = await migrate(vm, ['--offline', '--shutdown-timeout', '1', '--force-off', '--create-lv', VGB]);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal((r as { mode?: string }).mode, 'cold');
  const target = `/dev/${VGB}/lvc`;
  assert.deepEqual(r.disks?.[0]?.target.lv, { vg: VGB, name: 'lvc', size_bytes: 16 * MiB, created: true });
  const reported = await counter(a, vm);
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.match(await labVirsh('lab-b', ['dumpxml', vm]), new RegExp(`<disk type='block' device='disk'>[\\s\\S]*<source dev='${target}'`));
  await waitForCounter(b, vm, 5);
  await b.call('libvirt.destroy', { domain: vm });
  // The guest numbers its records from 1 again after a boot: every number it reported before is on the LV, old or rewritten.
  const check = await b.call('lab.checkRecords', { disks: [target], serialLogs: [], lastReported: reported });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  await cleanDomain([a, b], vm);
  await removeLvs('lvc');
});

test('warm: a QEMU VM on an LV is pre-copied into a new LV and cut over, every record intact', async () => {
  const vm = 'lv-warm';
  const disk = await freshLvVm(vm, 'lvw', 8 * MiB);
  await startGuest(a, { name: vm, disks: [disk] });

  const r = await migrate(vm, ['--mode', 'warm', '--create-lv', VGB]);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const target = `/dev/${VGB}/lvw`;
  assert.deepEqual(r.disks?.[0]?.target.lv, { vg: VGB, name: 'lvw', size_bytes: 8 * MiB, created: true });
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  await killVm(b, vm);
  const check = await b.call('lab.checkRecords', { disks: [target], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  await cleanLvVm(vm, 'lvw');
});
