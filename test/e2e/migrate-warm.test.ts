/**
 * Warm moves of a QEMU VM, end to end: the disks pre-copied while the guest
 * writes, passes of its changes only, then a cut-over whose last pass runs
 * at the pause; a pre-copy broken twice (the link cut, ferry killed) and
 * continued without sending again what had crossed; --precopy-only then
 * --cutover; failures before the commit leave the VM running on the source
 * with the pre-copy kept.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { RemoteQmp } from '../../src/drivers/qemu/remote-qmp.js';
import { run } from '../../src/util/exec.js';
import { labHost } from '../../src/lab/lab.js';
import { hostPidOf } from '../../src/lab/namespace-pid.js';
import {
  cleanVm,
  counter,
  cutLinkTo,
  ferry,
  ferryHeldAt,
  ferryInBackground,
  killMoveAgent,
  killVm,
  labVmPaths,
  startGuest,
  startHeldMove,
  stateDir,
  until,
  useLab,
  vmPid,
  waitForCounter,
} from './harness.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const MiB = 1024 * 1024;

interface Pass {
  pass: number;
  kind: string;
  stage: string;
  bytes: number;
}
interface Report {
  status: string;
  mode?: string;
  passes?: Pass[];
  final_pass_bytes?: number;
  downtime_ms?: number;
  source_running?: boolean;
  journal?: string;
  error?: { code: string; message: string; hint?: string };
}

async function migrate(vm: string, args: string[] = []): Promise<Report> {
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...args]);
  return JSON.parse(r.stdout) as Report;
}

async function allocated(agent: AgentClient, path: string): Promise<number> {
  const r = await agent.call('system.run', { file: 'du', args: ['-B1', '--', path] });
  return Number(r.stdout.split(/\s+/)[0]);
}

/** A guest whose disk already holds `fillMiB` of data at 64 MiB, so that a first pass takes a while under a cap. */
async function startFilled(vm: string, sizeMiB: number, fillMiB: number, guestOptions = ''): Promise<string> {
  const disk = `/var/lib/ferry/images/${vm}.qcow2`;
  for (const h of [a, b]) {
    await cleanVm(h, vm, 0);
    await h.call('file.remove', { path: disk });
  }
  await a.call('image.create', { path: disk, format: 'qcow2', sizeBytes: sizeMiB * MiB });
  if (fillMiB) {
    const fill = await a.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P 0xa5 64M ${fillMiB}M`, disk] });
    assert.equal(fill.exitCode, 0, fill.stderr);
  }
  await startGuest(a, { name: vm, disks: [disk], extraAppend: `ferry.rate=20 ${guestOptions}`.trim() });
  return disk;
}

/** What ferry added to the source QEMU and left there: warm jobs and NBD nodes. */
async function leftovers(agent: AgentClient, vm: string): Promise<string[]> {
  const proc = (await agent.call('qemu.list', undefined)).find((p) => p.name === vm);
  const qmp = await RemoteQmp.open(agent, proc!.qmpSocket!);
  try {
    const jobs = await qmp.execute<Array<{ device: string }>>('query-block-jobs');
    const nodes = await qmp.execute<Array<{ 'node-name': string }>>('query-named-block-nodes', { flat: true });
    return [...jobs.map((j) => j.device), ...nodes.map((n) => n['node-name'])].filter((n) => n.startsWith('ferry-'));
  } finally {
    await qmp.close();
  }
}

/** The pid of the newest migration of `vm`'s agent on the source or the target, from its journal (as its lab host sees it). */
function agentPid(vm: string, side: 'source' | 'target'): number {
  const dir = `${stateDir}/journal`;
  const newest = readdirSync(dir)
    .filter((f) => f.includes(`-migrate-${vm}-`))
    .sort()
    .at(-1)!;
  const agents = readFileSync(`${dir}/${newest}`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: string; source?: { pid: number }; target?: { pid: number } })
    .find((e) => e.step === 'agents')!;
  return agents[side]!.pid;
}

async function runningOn(agent: AgentClient, vm: string): Promise<void> {
  const n = await counter(agent, vm);
  await waitForCounter(agent, vm, n + 3);
}

async function recordsIntact(agent: AgentClient, vm: string, disk: string): Promise<void> {
  const last = await counter(agent, vm);
  await killVm(agent, vm);
  const check = await agent.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
  assert.equal(check.missingCount, 0, `missing: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
}

test('warm: the disk pre-copied while the guest writes, then a cut-over whose last pass runs at the pause; every record intact', async () => {
  const vm = 'e2e-warm';
  const disk = await startFilled(vm, 128, 16);
  const r = await migrate(vm, ['--mode', 'warm', '--delete-source']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.mode, 'warm');
  const passes = r.passes!;
  assert.equal(passes[0]!.kind, 'first');
  assert.equal(passes[0]!.stage, 'precopy');
  assert.ok(passes[0]!.bytes >= 16 * MiB, `the first pass carried the data: ${passes[0]!.bytes}`);
  assert.ok(passes.slice(1).every((p) => p.kind === 'changes'));
  assert.equal(passes.at(-1)!.stage, 'final');
  assert.equal(r.final_pass_bytes, passes.at(-1)!.bytes);
  assert.ok(r.final_pass_bytes! < 2 * MiB, `the last pass carries only the last writes: ${r.final_pass_bytes}`);
  assert.ok(r.downtime_ms !== undefined && r.downtime_ms < 2000, `downtime ${r.downtime_ms} ms`);
  assert.equal(await vmPid(a, vm), undefined, 'the source QEMU stopped');
  await runningOn(b, vm);
  const data = await b.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'read -P 0xa5 64M 16M', disk] });
  assert.doesNotMatch(data.stdout, /Pattern verification failed/);
  await recordsIntact(b, vm, disk);
  await cleanVm(b, vm, 0);
  await b.call('file.remove', { path: disk });
});

test('warm: a pre-copy broken by a cut link, by ferry killed, by its source agent killed, by every process of the move on the target killed as in a reboot, continues each time without sending again what crossed; --precopy-only then --cutover', async () => {
  const vm = 'e2e-warm-resume';
  const fill = 96;
  const disk = await startFilled(vm, 256, fill);
  const args = ['--mode', 'warm', '--precopy-only', '--bandwidth', '12'];

  // 1. The link is cut (its TCP connection reset) once a fifth of the data is on the target.
  const cut = ferryInBackground(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...args]);
  await until(
    'a quarter of the data on the target',
    async () => ((await b.call('file.stat', { path: disk })).exists && (await allocated(b, disk)) > (fill / 4) * MiB ? true : undefined),
    120_000,
    200,
  );
  // The NBD connection only: the agents' ssh links stay.
  await cutLinkTo(b.host.address);
  const out = (await cut.ended).stdout;
  const broken = JSON.parse(out) as Report;
  assert.equal(broken.status, 'failed', JSON.stringify(broken));
  assert.equal(broken.error?.code, 'PRECOPY_FAILED', JSON.stringify(broken.error));
  assert.match(broken.error!.hint!, /run the same command again/);
  await runningOn(a, vm);
  assert.deepEqual(await leftovers(a, vm), [], 'nothing of ferry left in the source QEMU');

  // 2. ferry is killed at two fifths.
  const killed = ferryInBackground(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...args]);
  await until('two fifths of the data on the target', async () => ((await allocated(b, disk)) > ((fill * 2) / 5) * MiB ? true : undefined), 120_000, 200);
  killed.child.kill('SIGKILL');
  await killed.ended;
  await runningOn(a, vm);
  // Its target agent ended with it, and so did the pass; ferry recover clears what the pass left in the source QEMU.
  await until('the pass to end', async () => ((await leftovers(a, vm)).includes('ferry-warm-nbd-0') ? true : undefined));
  const recovered = await ferry(['recover', vm, '--json']);
  assert.equal(recovered.code, 0, recovered.stderr);
  assert.deepEqual(await leftovers(a, vm), [], "ferry recover removed the pass's job and NBD node");

  // 3. The source's agent is killed (and with it the controller's hold on the source QEMU) at three fifths.
  const lost = ferryInBackground(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...args]);
  await until('three fifths of the data on the target', async () => ((await allocated(b, disk)) > ((fill * 3) / 5) * MiB ? true : undefined), 120_000, 200);
  process.kill(await hostPidOf((await labHost('lab-a')).pid, agentPid(vm, 'source')), 'SIGKILL');
  const lostReport = JSON.parse((await lost.ended).stdout) as Report;
  assert.equal(lostReport.status, 'failed', JSON.stringify(lostReport));
  assert.equal(lostReport.source_running, true);
  await runningOn(a, vm);

  // 4. At four fifths every process of the move on the target dies at once, as in a reboot of that host:
  // its agent and the qemu-storage-daemon that receives (whose writes are flushed before they are acknowledged).
  const rebooted = ferryInBackground(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...args]);
  await until('four fifths of the data on the target', async () => ((await allocated(b, disk)) > ((fill * 4) / 5) * MiB ? true : undefined), 120_000, 200);
  const targetAgent = await hostPidOf((await labHost('lab-b')).pid, agentPid(vm, 'target'));
  await run('pkill', ['-KILL', '-f', `qemu-storage-daemon .*${vm}`]);
  process.kill(targetAgent, 'SIGKILL');
  const rebootReport = JSON.parse((await rebooted.ended).stdout) as Report;
  assert.equal(rebootReport.status, 'failed', JSON.stringify(rebootReport));
  await runningOn(a, vm);

  // 5. The same command continues: only what had not crossed (and the guest's writes) crosses now.
  const onTarget = await allocated(b, disk);
  const resumed = await migrate(vm, args);
  assert.equal(resumed.status, 'precopied', JSON.stringify(resumed));
  const first = resumed.passes![0]!;
  assert.equal(first.kind, 'changes', 'no pass of the whole disk again');
  const left = fill * MiB - (onTarget - 4 * MiB);
  assert.ok(first.bytes <= left + 8 * MiB, `the resumed pass carried ${first.bytes} bytes; ${left} were left to copy`);
  assert.ok(first.bytes < fill * MiB * 0.75, `most of the data did not cross again: ${first.bytes}`);
  assert.notEqual(await vmPid(a, vm), undefined, 'the VM still runs on the source');
  assert.equal(await vmPid(b, vm), undefined, 'and nothing runs on the target');
  await runningOn(a, vm);

  // 6. Later, the cut-over: the changes since, then the pause.
  const done = await migrate(vm, ['--cutover']);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.ok(
    done.passes!.every((p) => p.kind === 'changes'),
    JSON.stringify(done.passes),
  );
  assert.ok(done.passes![0]!.bytes < 8 * MiB, `only the changes since the pre-copy crossed: ${done.passes![0]!.bytes}`);
  await runningOn(b, vm);
  const data = await b.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-U', '-c', `read -P 0xa5 64M ${fill}M`, disk] });
  assert.doesNotMatch(data.stdout, /Pattern verification failed/, 'the data arrived whole');
  await recordsIntact(b, vm, disk);
  for (const h of [a, b]) {
    await cleanVm(h, vm, 0);
    await h.call('file.remove', { path: disk });
  }
});

test('warm: --cutover with no pre-copy is refused before anything is made; a shut-off VM is refused', async () => {
  const vm = 'e2e-warm-none';
  const disk = await startFilled(vm, 32, 0);
  const r = await migrate(vm, ['--cutover']);
  assert.equal(r.status, 'failed');
  assert.equal(r.error?.code, 'NO_PRECOPY', JSON.stringify(r.error));
  assert.match(r.error!.hint!, /--precopy-only/);
  assert.equal((await b.call('file.stat', { path: disk })).exists, false, 'nothing made on the target');
  assert.deepEqual(await leftovers(a, vm), []);
  const usage = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--mode', 'cold', '--precopy-only']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--precopy-only belongs to warm moves/);
  await runningOn(a, vm);
  await cleanVm(a, vm, 0);
  await a.call('file.remove', { path: disk });
});

test('warm: the target QEMU killed during the catch-up leaves the VM running on the source and the pre-copy kept; the same command then completes', async () => {
  const vm = 'e2e-warm-fault';
  const disk = await startFilled(vm, 96, 8);
  const { stdout: out } = await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--mode', 'warm'], 'phase:catch-up', () => killVm(b, vm));
  const failed = JSON.parse(out) as Report;
  assert.equal(failed.status, 'failed', out);
  assert.equal(failed.source_running, true);
  assert.match(failed.error!.hint!, /pre-copy is kept/);
  await runningOn(a, vm);
  assert.deepEqual(await leftovers(a, vm), [], 'nothing of ferry left in the source QEMU');
  assert.equal(await vmPid(b, vm), undefined);
  assert.ok((await b.call('file.stat', { path: disk })).exists, 'the pre-copied image is kept');

  const again = await migrate(vm, ['--mode', 'warm']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.equal(again.passes![0]!.kind, 'changes', 'the pre-copy was not made again');
  await runningOn(b, vm);
  await recordsIntact(b, vm, disk);
  await cleanVm(b, vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});

test('warm: Ctrl-C during the pre-copy leaves the VM running on the source, nothing of ferry in its QEMU', async () => {
  const vm = 'e2e-warm-ctrlc';
  const disk = await startFilled(vm, 128, 48);
  // As at a terminal: the controller in its own process group, which Ctrl-C signals.
  const ctrlC = ferryInBackground(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--mode', 'warm', '--bandwidth', '8'], { ownGroup: true });
  await until('the pre-copy under way', async () => ((await b.call('file.stat', { path: disk })).exists && (await allocated(b, disk)) > 4 * MiB ? true : undefined), 120_000, 200);
  process.kill(-ctrlC.child.pid!, 'SIGINT');
  const r = await ctrlC.ended;
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.status, 'aborted', r.stdout);
  assert.equal(report.source_running, true);
  await runningOn(a, vm);
  assert.deepEqual(await leftovers(a, vm), []);
  assert.equal(await vmPid(b, vm), undefined);
  await cleanVm(a, vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});

test('warm --reboot: the guest stopped after the pre-copy, the last pass carries its last writes, and the target image holds every record it reported; it boots there', async () => {
  const vm = 'e2e-warm-reboot';
  const disk = await startFilled(vm, 96, 8);
  const r = await migrate(vm, ['--reboot', '--force-off', '--shutdown-timeout', '1', '--no-start', '--delete-source']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.mode, 'warm');
  assert.equal(r.passes!.at(-1)!.stage, 'final');
  assert.equal(r.final_pass_bytes, r.passes!.at(-1)!.bytes);
  assert.ok(r.final_pass_bytes! < 2 * MiB, `the last pass carried the last writes only: ${r.final_pass_bytes}`);
  assert.equal(await vmPid(a, vm), undefined, 'the source QEMU is gone');
  assert.equal((await a.call('file.stat', { path: disk })).exists, false, '--delete-source removed the source disk');
  assert.equal(await vmPid(b, vm), undefined, '--no-start: nothing runs on the target yet');
  // Every record the guest reported on the source is on the target's image.
  const serial = labVmPaths(vm).serialLog;
  const last = await counter(a, vm);
  assert.ok(last > 5);
  await b.call('file.write', { path: serial, text: (await a.call('file.read', { path: serial })).text });
  const check = await b.call('lab.checkRecords', { disks: [disk], serialLogs: [serial], lastReported: last });
  assert.equal(check.missingCount, 0, `missing: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
  // And it boots there, from the same command line with the target's paths.
  const argv = JSON.parse(
    readFileSync(r.journal!, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"target-argv"'))
      .at(-1)!,
  ) as { argv: string[] };
  await b.call('file.remove', { path: serial });
  await b.call('qemu.start', { argv: argv.argv, pidfile: `/run/ferry/${vm}.pid` });
  await waitForCounter(b, vm, 3);
  await cleanVm(b, vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});

test("warm --reboot: the source's agent killed while the guest is stopped for the last pass (its hold gone with it): the run has the guest run again through a new agent, and nothing is left on lab-b", async () => {
  const vm = 'e2e-warm-rbagent';
  const disk = await startFilled(vm, 96, 0);
  const m = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--reboot', '--force-off', '--shutdown-timeout', '1'], 'source-paused');
  await m.held();
  assert.ok(await killMoveAgent(m.entries(), 'source'), 'the journal names the source agent');
  process.kill(m.child.pid!, 'SIGCONT');
  const result = await m.done;
  const r = JSON.parse(result.stdout) as Report & { source_running?: boolean };
  assert.notEqual(r.status, 'completed', result.stdout);
  assert.equal(r.source_running, true, `the report confirms the guest runs on the source: ${result.stdout}`);
  await waitForCounter(a, vm, (await counter(a, vm)) + 3);
  assert.equal(await vmPid(b, vm), undefined, 'no QEMU on lab-b');
  await cleanVm(a, vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});

test('warm --reboot of a guest that powers off on ACPI: no --force-off, the last pass after its power-off, and every record it reported on the target', async () => {
  const vm = 'e2e-warm-acpi';
  const disk = await startFilled(vm, 32, 0, 'ferry.acpi=poweroff');
  const r = await migrate(vm, ['--reboot', '--no-start', '--delete-source']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.passes!.at(-1)!.stage, 'final');
  const serial = labVmPaths(vm).serialLog;
  const console = (await a.call('file.read', { path: serial })).text;
  assert.match(console, /FERRY-GUEST-POWEROFF/, 'the guest powered itself off');
  const steps = readFileSync(r.journal!, 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { step: string }).step);
  assert.ok(steps.includes('source-shut-down'), "the power-off was the guest's own");
  assert.ok(!steps.includes('source-paused'), 'the guest was not stopped where it was');
  const last = await counter(a, vm);
  await b.call('file.write', { path: serial, text: console });
  const check = await b.call('lab.checkRecords', { disks: [disk], serialLogs: [serial], lastReported: last });
  assert.equal(check.missingCount, 0, `missing: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
  await b.call('file.remove', { path: serial });
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});

test('warm --reboot: ferry killed once the guest is stopped for the last pass: the source agent runs it again by itself, ferry recover then has nothing to undo; killed right after the commit: ferry recover keeps the target and stops the older copy', async () => {
  const vm = 'e2e-warm-reboot-lost';
  const disk = await startFilled(vm, 32, 0);
  const args = ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--reboot', '--force-off', '--shutdown-timeout', '1'];
  await ferryHeldAt(args, 'source-paused', async (pid) => void process.kill(pid, 'SIGKILL'));
  await runningOn(a, vm);
  assert.equal(await vmPid(b, vm), undefined, 'nothing started on the target');
  const recovered = await ferry(['recover', vm, '--json']);
  assert.equal(recovered.code, 0, recovered.stderr);
  const [report] = JSON.parse(recovered.stdout) as Array<{ status: string; runs_on: string[] }>;
  assert.deepEqual(report!.runs_on, ['lab-a']);
  assert.deepEqual(await leftovers(a, vm), []);
  await runningOn(a, vm);

  // The rerun, killed once the guest has booted on b: the commit point, the older copy still stopped on a.
  const m = startHeldMove(vm, args, 'committed');
  await m.held();
  m.child.kill('SIGKILL');
  await m.done;
  assert.ok(await vmPid(b, vm), 'it runs on the target');
  assert.ok(await vmPid(a, vm), 'the older copy waits, stopped, for the finish');
  const after = await ferry(['recover', m.id()!, '--json']);
  assert.equal(after.code, 0, after.stderr);
  const [settled] = JSON.parse(after.stdout) as Array<{ status: string; runs_on: string[] }>;
  assert.equal(settled!.status, 'settled', after.stdout);
  assert.deepEqual(settled!.runs_on, ['lab-b']);
  await until('the older copy to stop', async () => ((await vmPid(a, vm)) === undefined ? true : undefined));
  for (const path of [labVmPaths(vm).qmpSocket, labVmPaths(vm).pidfile]) assert.equal((await a.call('file.stat', { path })).exists, false, `lab-a:${path} is gone with it`);
  assert.ok((await a.call('file.stat', { path: disk })).exists, "the source's disk is kept (no --delete-source)");
  await waitForCounter(b, vm, 3);
  assert.deepEqual(JSON.parse((await ferry(['recover', m.id()!, '--json'])).stdout), [], 'nothing left to recover');
  for (const h of [a, b]) {
    await cleanVm(h, vm, 0);
    await h.call('file.remove', { path: disk });
  }
});
