/**
 * Live migration end to end: real QEMU (TCG), the lab's two hosts (lab-b
 * through a real sshd), a guest that writes records without pause.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanVm, counter, diskPath, ferry, killVm, labVmPaths, startGuest, vmPid, waitForCounter, useLab } from './harness.js';
import type { AgentClient } from '../../src/hosts/agent-client.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

async function migrate(vm: string, from: string, to: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await ferry(['migrate', vm, '--from', from, '--to', to, '--json', ...extra]);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(report.status, 'completed', `migration ${from} -> ${to} failed: ${r.stdout} ${r.stderr}`);
  return report;
}

test('migrate a->b->a keeps the guest writing and loses no record', async () => {
  const vm = 'e2e-ab';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['64M'] });
  const before1 = await counter(a, vm);

  const r1 = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
  for (const k of ['downtime_ms', 'total_ms', 'ram_bytes', 'disk_bytes', 'phases']) assert.ok(k in r1, `report has ${k}`);
  assert.ok((r1.ram_bytes as number) > 0 && (r1.disk_bytes as number) > 0);
  assert.equal(await vmPid(a, vm), undefined, 'source QEMU stopped');
  assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, '--delete-source removed the source disk');
  // The guest's counter goes on at the target.
  const onB = await waitForCounter(b, vm, before1 + 10);
  assert.ok(onB > before1);

  await migrate(vm, 'lab-b', 'lab-a');
  assert.equal(await vmPid(b, vm), undefined);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, true, 'source disk kept without --delete-source');
  const onA = await waitForCounter(a, vm, onB + 10);

  await killVm(a, vm);
  const logs = [labVmPaths(vm).serialLog];
  const check = await a.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: logs, lastReported: await counter(b, vm) });
  assert.ok(check.lastReportedSeq >= onA);
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corrupt.length, 0);
  assert.ok(check.ok);
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test('migrate two disks at once', async () => {
  const vm = 'e2e-two';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['32M', '32M'] });
  const written = await counter(a, vm);
  const r = await migrate(vm, 'lab-a', 'lab-b');
  // Both disks cross, but only what the guest has written to them: new target images need no zeros.
  assert.ok((r.disk_bytes as number) >= written * 4096, `disk_bytes ${String(r.disk_bytes)} covers the ${written} records written`);
  assert.ok((r.disk_bytes as number) < 32 * 1024 * 1024, `disk_bytes ${String(r.disk_bytes)}: the disks' unwritten space did not cross`);
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  await killVm(b, vm);
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm, 0), diskPath(vm, 1)], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.ok(check.ok, JSON.stringify(check));
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test('migrate a qcow2 disk on a backing file copies only the top', async () => {
  const vm = 'e2e-base';
  const base = '/var/lib/ferry/images/e2e-base.raw';
  const top = '/var/lib/ferry/images/e2e-base-top.qcow2';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  // The same 128 MiB base on both hosts, full of data, so a full copy would show.
  for (const h of [a, b]) {
    await h.call('file.remove', { path: top });
    await h.call('system.run', { file: 'sh', args: ['-c', `head -c 134217728 /dev/zero | tr '\\0' 'x' > ${base}`] });
  }
  await a.call('image.create', { path: top, format: 'qcow2', sizeBytes: 128 * 1024 * 1024, backingFile: base, backingFormat: 'raw' });
  await startGuest(a, { name: vm, disks: [top] });
  const r = await migrate(vm, 'lab-a', 'lab-b');
  assert.ok((r.disk_bytes as number) < 64 * 1024 * 1024, `only the top crossed: ${String(r.disk_bytes)} bytes`);
  const chain = await b.call('image.chain', { path: top });
  assert.equal(chain[1]?.filename, base, 'the target image keeps its backing file');
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 5);
  await killVm(b, vm);
  const check = await b.call('lab.checkRecords', { disks: [top], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  // Slots the guest has not reached yet show the base's bytes, not records: only reported records count here.
  assert.equal(check.missingCount, 0, JSON.stringify(check.missing));
  assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
  assert.ok(check.intact >= n);

  // A base that differs on the target is refused before anything is created.
  await a.call('image.create', { path: diskPath('e2e-base2'), format: 'qcow2', sizeBytes: 128 * 1024 * 1024, backingFile: base, backingFormat: 'raw' });
  await b.call('system.run', { file: 'sh', args: ['-c', `printf y | dd of=${base} bs=1 seek=4096 conv=notrunc status=none`] });
  await startGuest(a, { name: 'e2e-base2', disks: [diskPath('e2e-base2')] });
  const bad = await ferry(['migrate', 'e2e-base2', '--from', 'lab-a', '--to', 'lab-b', '--json']);
  const rep = JSON.parse(bad.stdout) as { status: string; error: { code: string; message: string } };
  assert.equal(rep.status, 'failed');
  assert.equal(rep.error.code, 'BACKING_MISMATCH');
  assert.ok(await vmPid(a, 'e2e-base2'));
  assert.equal((await b.call('file.stat', { path: diskPath('e2e-base2') })).exists, false);
  for (const h of [a, b]) {
    await cleanVm(h, vm);
    await cleanVm(h, 'e2e-base2');
    await h.call('file.remove', { path: top });
    await h.call('file.remove', { path: base });
  }
});

test('a guest dirtying RAM faster than --bandwidth gets a will-not-converge warning, and Ctrl-C at the terminal leaves it running', async () => {
  const vm = 'e2e-dirty';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['16M'], memoryMiB: 128, extraAppend: 'ferry.dirty=32 ferry.rate=5' }, 2);
  let warned = false;
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--bandwidth', '8'], {
    onStderr: (chunk, child) => {
      if (/will not converge/.test(chunk) && !warned) {
        warned = true;
        // As a terminal's Ctrl-C: SIGINT to the whole foreground process group.
        process.kill(-child.pid!, 'SIGINT');
      }
    },
    ownGroup: true,
  });
  assert.ok(warned, `no convergence warning in: ${r.stderr.slice(-2000)}`);
  assert.match(r.stderr, /Raise --bandwidth, pass --auto-converge/);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /is running on lab-a/);
  assert.ok(await vmPid(a, vm));
  assert.equal(await vmPid(b, vm), undefined);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'the target image was removed');
  // Rolled back through the agents, which the Ctrl-C did not reach: the guest runs on and nothing of the migration is left.
  const list = JSON.parse((await ferry(['vm', 'list', 'lab-a', '--json'])).stdout) as Array<{ name: string; state: string }>;
  assert.equal(list.find((v) => v.name === vm)?.state, 'running');
  const before = await counter(a, vm);
  await waitForCounter(a, vm, before + 3);
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});
