/**
 * `ferry migrate` refuses bad input before it creates anything: each case has
 * its error code in the --json report, a message naming the culprit and a
 * hint for humans, and leaves the source VM running and the target bare.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { cleanVm, counter, diskPath, ferry, lab, labVmPaths, startGuest, stateDir, vmPid, waitForCounter } from './harness.js';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { changeLabQemu } from '../../src/lab/lab.js';

let a: AgentClient;
let b: AgentClient;
let close: () => void;
// Unique per run: another run of this file may share the lab.
const vm = `inp-${process.pid}`;

before(async () => {
  ({ a, b, close } = await lab());
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['64M'] });
});

after(async () => {
  for (const h of [a, b]) {
    await cleanVm(h, vm);
    for (const path of [labVmPaths(vm).qmpSocket, labVmPaths(vm).pidfile]) await h.call('file.remove', { path });
  }
  close();
});

interface Refusal {
  status: string;
  error: { code: string; message: string; hint?: string };
  source_running?: boolean;
  /** What the same command printed for a human. */
  stderr: string;
}

/**
 * Runs the same refused migration twice: with --json (the code for scripts)
 * and without (the message and hint for humans). `mentions` must all appear
 * in the human message.
 */
async function refused(args: string[], code: string, mentions: string[]): Promise<Refusal> {
  const j = await ferry([...args, '--json']);
  assert.notEqual(j.code, 0, `ferry ${args.join(' ')} --json must fail`);
  const report = JSON.parse(j.stdout) as Refusal;
  assert.notEqual(report.status, 'completed');
  assert.equal(report.error.code, code, `error code of ${args.join(' ')}: ${j.stdout}`);
  assert.ok(report.error.hint, `the --json error has a hint: ${j.stdout}`);

  const h = await ferry(args);
  assert.notEqual(h.code, 0);
  assert.equal(h.stdout, '', 'nothing on stdout without --json when refused');
  for (const m of mentions) assert.ok(h.stderr.includes(m), `the message mentions "${m}": ${h.stderr}`);
  assert.match(h.stderr, /hint: \S/, `the message has a hint: ${h.stderr}`);
  assert.doesNotMatch(h.stderr, /\n\s+at .*\.js:\d+/, `no stack trace: ${h.stderr}`);
  return { ...report, stderr: h.stderr };
}

/** Nothing was created on lab-b and the guest still writes on lab-a. */
async function nothingChanged(): Promise<void> {
  assert.equal(await vmPid(b, vm), undefined, 'no QEMU for the VM on lab-b');
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image on lab-b');
  assert.ok(await vmPid(a, vm), 'the VM still runs on lab-a');
  const n = await counter(a, vm);
  await waitForCounter(a, vm, n + 2, 30_000);
}

test('unknown VM: UNKNOWN_VM naming the VM and the host', async () => {
  const r = await refused(['migrate', `${vm}-nosuch`, '--from', 'lab-a', '--to', 'lab-b'], 'UNKNOWN_VM', [`${vm}-nosuch`, 'lab-a']);
  assert.doesNotMatch(r.stderr, /WARNING|could not confirm/, 'no warning about a VM the source never had');
  await nothingChanged();
});

test('unknown host: UNKNOWN_HOST naming the host', async () => {
  await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-zz'], 'UNKNOWN_HOST', ['lab-zz']);
  await refused(['migrate', vm, '--from', 'lab-yy', '--to', 'lab-b'], 'UNKNOWN_HOST', ['lab-yy']);
  await nothingChanged();
});

test('same host: SAME_HOST', async () => {
  await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-a'], 'SAME_HOST', ['lab-a']);
  await nothingChanged();
});

test('an image already at the target path: TARGET_EXISTS, and it is not overwritten', async () => {
  const path = diskPath(vm);
  const content = 'precious data that must survive\n';
  await b.call('file.write', { path, text: content });
  try {
    const r = await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b'], 'TARGET_EXISTS', [path, 'lab-b']);
    assert.equal(r.source_running, true, 'the report confirms the VM runs on the source');
    assert.equal((await b.call('file.read', { path })).text, content, 'the existing file is untouched');
    assert.equal(await vmPid(b, vm), undefined);
  } finally {
    await b.call('file.remove', { path });
  }
  await nothingChanged();
});

test('--disk-map to a device smaller than the disk: TARGET_TOO_SMALL', async () => {
  const backing = `/var/lib/ferry/images/${vm}-small.raw`;
  await b.call('system.run', { file: 'sh', args: ['-c', `head -c 16777216 /dev/zero | tr '\\0' 's' > ${backing}`] });
  const before = await b.call('file.sha256', { path: backing });
  const lo = await b.call('system.run', { file: 'losetup', args: ['-f', '--show', backing] });
  assert.equal(lo.exitCode, 0, `losetup: ${lo.stderr}`);
  const dev = lo.stdout.trim();
  try {
    assert.match(dev, /^\/dev\/loop\d+$/);
    await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--disk-map', `${diskPath(vm)}=${dev}`], 'TARGET_TOO_SMALL', [dev]);
    assert.equal((await b.call('file.sha256', { path: backing })).sha256, before.sha256, 'nothing was written to the device');
  } finally {
    await b.call('system.run', { file: 'losetup', args: ['-d', dev] });
    await b.call('file.remove', { path: backing });
  }
  await nothingChanged();
});

test('--disk-map naming a path that is not a disk of the VM: USAGE', async () => {
  const bogus = `/var/lib/ferry/images/${vm}-not-a-disk.qcow2`;
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--disk-map', `${bogus}=/var/lib/ferry/images/${vm}-x.qcow2`]);
  assert.equal(r.code, 2, 'usage errors exit 2');
  await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--disk-map', `${bogus}=/var/lib/ferry/images/${vm}-x.qcow2`], 'USAGE', [bogus, diskPath(vm)]);
  // Malformed pairs are refused too, before any host is contacted.
  await refused(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--disk-map', 'no-equals-sign'], 'USAGE', ['no-equals-sign']);
  assert.equal((await b.call('file.stat', { path: `/var/lib/ferry/images/${vm}-x.qcow2` })).exists, false);
  await nothingChanged();
});

test('a target host that cannot be reached: UNREACHABLE', async () => {
  const hosts = join(stateDir, 'inp-hosts.yaml');
  writeFileSync(
    hosts,
    [
      'hosts:',
      '  dead:',
      '    transport: ssh',
      '    ssh: root@127.0.0.9',
      '    ssh_options: [-p, "1", -o, BatchMode=yes, -o, ConnectTimeout=5, -o, StrictHostKeyChecking=no]',
      '    address: 127.0.0.9',
      '',
    ].join('\n'),
  );
  const t0 = Date.now();
  await refused(['--hosts', hosts, 'migrate', vm, '--from', 'lab-a', '--to', 'dead'], 'UNREACHABLE', ['dead', 'hint:']);
  assert.ok(Date.now() - t0 < 60_000, 'refused without a long wait');
  await nothingChanged();
});

test("a target QEMU that lacks the VM's CPU model, or a CPU flag it was given: INCOMPATIBLE_CPU naming them; the same move completes once the target has them", async () => {
  // Its own guest: this one runs with a named model and a flag beyond it, as seed 003's did.
  const cpuVm = `inp-cpu-${process.pid}`;
  const clean = async (): Promise<void> => {
    for (const h of [a, b]) {
      await cleanVm(h, cpuVm, 1);
      for (const path of [labVmPaths(cpuVm).qmpSocket, labVmPaths(cpuVm).pidfile]) await h.call('file.remove', { path });
    }
  };
  await clean();
  await startGuest(a, { name: cpuVm, disks: ['32M'], cpu: 'qemu64,+ssse3' });
  const move = ['migrate', cpuVm, '--from', 'lab-a', '--to', 'lab-b'];
  const untouched = async (): Promise<void> => {
    assert.equal(await vmPid(b, cpuVm), undefined, 'no QEMU for the VM on lab-b');
    assert.equal((await b.call('file.stat', { path: diskPath(cpuVm) })).exists, false, 'no image on lab-b');
    assert.ok(await vmPid(a, cpuVm), 'the VM still runs on lab-a');
  };
  try {
    try {
      // An older QEMU on the target, which does not know the model.
      await changeLabQemu('lab-b', { withoutCpuModels: ['qemu64'] });
      const model = await refused(move, 'INCOMPATIBLE_CPU', ['CPU model qemu64', 'lab-b']);
      assert.equal(model.source_running, true, 'the report confirms the VM runs on the source');
      assert.doesNotMatch(model.error.message, /flags/, 'the flag the target has is not named');
      await untouched();

      // A QEMU that knows the model but not the flag the VM was given beyond it.
      await changeLabQemu('lab-b', { withoutCpuFlags: ['ssse3'] });
      const flag = await refused(move, 'INCOMPATIBLE_CPU', ['CPU flags ssse3', 'lab-b']);
      assert.doesNotMatch(flag.error.message, /model/, 'the model the target knows is not named');
      await untouched();
    } finally {
      await changeLabQemu('lab-b');
    }
    // lab-b's own QEMU has both: the refusals came from the differences.
    const n = await counter(a, cpuVm);
    const r = await ferry([...move, '--json']);
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
    await waitForCounter(b, cpuVm, n + 1, 60_000);
  } finally {
    await clean();
  }
});
