/**
 * Warm moves of libvirt domains end to end: the test guest runs as a
 * domain on lab-a and writes records without pause; ferry pre-copies its
 * disk through libvirt's monitor into lab-b's image, pauses it, runs the
 * last pass and has libvirt move it paused, then resumes it on lab-b.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh } from '../../src/lab/lab.js';
import { labNvramPath } from '../../src/lab/vm.js';
import { counter, cutLinkTo, cutSshLinks, diskPath, ferry, ferryHeldAt, ferryInBackground, killMoveAgent, labVmPaths, startHeldMove, until, type HeldMove, useLab, waitForCounter } from './harness.js';
import { cleanDomain, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const MiB = 1024 * 1024;

interface Pass {
  kind: string;
  stage: string;
  bytes: number;
}

async function migrate(vm: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...extra]);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** What of ferry's the domain's QEMU on `host` holds: warm jobs and NBD nodes. */
async function ferryLeftovers(host: string, vm: string): Promise<string[]> {
  const qmp = async (command: string): Promise<Array<Record<string, unknown>>> =>
    (JSON.parse(await labVirsh(host, ['qemu-monitor-command', vm, JSON.stringify({ execute: command })])) as { return: Array<Record<string, unknown>> }).return;
  const jobs = (await qmp('query-block-jobs')).map((j) => String(j.device));
  const nodes = (await qmp('query-named-block-nodes')).map((n) => String(n['node-name']));
  return [...jobs, ...nodes].filter((n) => n.startsWith('ferry-warm'));
}

/** The guest wrote on after the move, and every record it reported is on its disk. */
async function assertRecordsIntact(vm: string, since: number): Promise<void> {
  const onB = await waitForCounter(b, vm, since + 10);
  assert.deepEqual(await ferryLeftovers('lab-b', vm), []);
  await labVirsh('lab-b', ['destroy', vm]);
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm, 0)], serialLogs: [labVmPaths(vm).serialLog], lastReported: onB });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
}

/** The domain's UEFI variable store holds the same bytes on both hosts. */
async function assertSameNvram(vm: string): Promise<void> {
  const [onA, onB] = await Promise.all([a, b].map(async (h) => (await h.call('file.sha256', { path: labNvramPath(vm) })).sha256));
  assert.equal(onB, onA, 'the variable store moved with the domain');
}

test('libvirt warm: a running domain (UEFI) moves with passes and a short pause, its variable store with it, writes on, and loses no record', async (t) => {
  const vm = 'lvw-ab';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M', '--uefi']);
  const before = await counter(a, vm);
  const r = await migrate(vm, ['--mode', 'warm']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.deepEqual(r.files, [{ what: 'UEFI variable store', path: labNvramPath(vm) }]);
  await assertSameNvram(vm);
  assert.equal(r.mode, 'warm');
  assert.equal(r.driver, 'libvirt');
  const passes = r.passes as Pass[];
  assert.equal(passes[0]!.kind, 'first', JSON.stringify(passes));
  assert.ok(passes.slice(1).every((p) => p.kind === 'changes'));
  assert.equal(passes.at(-1)!.stage, 'final');
  assert.ok((r.downtime_ms as number) > 0, JSON.stringify(r));
  t.diagnostic(
    `downtime ${String(r.downtime_ms)} ms (libvirt: ${String(r.qemu_downtime_ms)} ms), RAM ${String(r.ram_bytes)} bytes, passes ${passes.map((p) => `${p.stage}/${p.kind}:${p.bytes}`).join(' ')}`,
  );
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.equal(await domainState('lab-a', vm), undefined, 'undefined on the source');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});

test('libvirt warm: --precopy-only leaves the domain on a and its image on b; --cutover then carries only the changes', async () => {
  const vm = 'lvw-pre';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M']);
  const r1 = await migrate(vm, ['--precopy-only']);
  assert.equal(r1.status, 'precopied', JSON.stringify(r1));
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, true, 'the pre-copied image is on b');
  assert.deepEqual(await ferryLeftovers('lab-a', vm), []);
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);

  const r2 = await migrate(vm, ['--cutover']);
  assert.equal(r2.status, 'completed', JSON.stringify(r2));
  const passes = r2.passes as Pass[];
  assert.ok(passes.length >= 2 && passes.every((p) => p.kind === 'changes'), JSON.stringify(passes));
  assert.equal(await domainState('lab-b', vm), 'running');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});

test('libvirt warm: a cut-over the target refuses resumes the domain on a, keeps the pre-copy on b but not the variable store it copied (UEFI), and a rerun completes', async () => {
  const vm = 'lvw-fail';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M', '--uefi']);
  // Held once the domain is paused; meanwhile lab-b gets another domain of the name, which makes libvirt refuse the move.
  const held = await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--mode', 'warm', '--json'], 'source-suspended', async () => {
    assert.equal(await domainState('lab-a', vm), 'paused');
    const xml = `<domain type='qemu'><name>${vm}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>`;
    await b.call('libvirt.define', { xml });
  });
  const { stdout } = held;
  const r = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(r.status, 'failed', stdout);
  assert.equal(r.failed_phase, 'switchover');
  assert.equal(r.source_running, true);
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.deepEqual(await ferryLeftovers('lab-a', vm), []);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, true, 'the pre-copy is kept on b');
  assert.equal((await b.call('file.stat', { path: labNvramPath(vm) })).exists, false, 'the variable store the cut-over copied is removed from b');
  assert.equal(await domainState('lab-b', vm), 'shut off', "the other domain on b is not ferry's to remove");
  await b.call('libvirt.undefine', { domain: vm });
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);

  const again = await migrate(vm, ['--mode', 'warm']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.equal((again.passes as Pass[])[0]!.kind, 'changes', 'the rerun continues from the pre-copy');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});

test('libvirt warm --reboot: refused without --force-off (libvirt would end the QEMU the last pass needs); with it, the target image holds every record, the variable store comes along, and the domain boots there (UEFI)', async () => {
  const vm = 'lvw-reboot';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M', '--uefi']);
  const refused = await migrate(vm, ['--reboot']);
  assert.equal(refused.status, 'failed', JSON.stringify(refused));
  assert.match(String((refused.error as { hint?: string }).hint), /--force-off/);
  assert.equal(await domainState('lab-a', vm), 'running', 'refused: the domain runs on');

  const r = await migrate(vm, ['--reboot', '--force-off', '--no-start']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const passes = r.passes as Pass[];
  assert.equal(passes[0]!.kind, 'changes', 'the refused run left a pre-copy this one continued');
  assert.equal(passes.at(-1)!.stage, 'final');
  assert.equal(await domainState('lab-a', vm), undefined, 'gone from the source');
  assert.equal(await domainState('lab-b', vm), 'shut off', '--no-start: defined on the target, not started');
  await assertSameNvram(vm);
  // Every record the guest reported before it stopped is on the target's image.
  const serial = labVmPaths(vm).serialLog;
  const last = await counter(a, vm);
  await b.call('file.write', { path: serial, text: (await a.call('file.read', { path: serial })).text });
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm, 0)], serialLogs: [serial], lastReported: last });
  assert.equal(check.missingCount, 0, `missing: ${check.missing.join(',')}`);
  await b.call('file.remove', { path: serial });
  await labVirsh('lab-b', ['start', vm]);
  await waitForCounter(b, vm, 3);
  await cleanDomain([a, b], vm, 1);
});

test('libvirt warm: a pre-copy broken by a cut link, then by ferry killed, continues without sending again what crossed', async () => {
  const vm = 'lvw-resume';
  const fill = 64;
  await cleanDomain([a, b], vm, 1);
  const disk = diskPath(vm, 0);
  await a.call('image.create', { path: disk, format: 'qcow2', sizeBytes: 128 * MiB });
  const filled = await a.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P 0xa5 32M ${fill}M`, disk] });
  assert.equal(filled.exitCode, 0, filled.stderr);
  await startDomain(a, vm, ['--disk', disk]);
  const args = ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--precopy-only', '--bandwidth', '10'];
  const onB = async (): Promise<number> =>
    (await b.call('file.stat', { path: disk })).exists ? Number((await b.call('system.run', { file: 'du', args: ['-B1', '--', disk] })).stdout.split(/\s+/)[0]) : 0;

  const cut = ferryInBackground(args);
  await until('a third of the data on the target', async () => ((await onB()) > (fill / 3) * MiB ? true : undefined), 120_000, 200);
  await cutLinkTo(b.host.address);
  const broken = JSON.parse((await cut.ended).stdout) as Record<string, unknown>;
  assert.equal(broken.status, 'failed', JSON.stringify(broken));
  assert.equal(await domainState('lab-a', vm), 'running');

  const killed = ferryInBackground(args);
  await until('two thirds of the data on the target', async () => ((await onB()) > ((fill * 2) / 3) * MiB ? true : undefined), 120_000, 200);
  killed.child.kill('SIGKILL');
  await killed.ended;
  assert.equal(await domainState('lab-a', vm), 'running');

  const there = await onB();
  const r = await migrate(vm, ['--precopy-only']);
  assert.equal(r.status, 'precopied', JSON.stringify(r));
  const first = (r.passes as Pass[])[0]!;
  assert.equal(first.kind, 'changes', 'no pass of the whole disk again');
  assert.ok(first.bytes <= fill * MiB - (there - 4 * MiB) + 8 * MiB, `the resumed pass carried ${first.bytes} bytes with ${there} already there`);
  assert.deepEqual(await ferryLeftovers('lab-a', vm), []);
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);
  const done = await migrate(vm, ['--cutover']);
  assert.equal(done.status, 'completed', JSON.stringify(done));
  const data = await b.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-U', '-c', `read -P 0xa5 32M ${fill}M`, disk] });
  assert.doesNotMatch(data.stdout, /Pattern verification failed/, 'the data arrived whole');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});

/** A warm move a -> b with `extra`, its controller killed (SIGKILL) right after its journal records `step`; its id. */
async function killedAt(vm: string, step: string, extra: string[], atHold: () => Promise<void> = async () => undefined): Promise<string> {
  return (await killedMove(vm, step, extra, atHold)).id()!;
}

/** The same, giving the move: its id and its journal. */
async function killedMove(vm: string, step: string, extra: string[], atHold: () => Promise<void> = async () => undefined): Promise<HeldMove> {
  const m = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...extra], step);
  await m.held();
  await atHold();
  m.child.kill('SIGKILL');
  await m.done;
  return m;
}

interface Recovery {
  status: string;
  settlement?: { outcome: string };
  runs_on: string[];
}

async function recover(id: string): Promise<Recovery> {
  const r = await ferry(['recover', id, '--json']);
  assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
  return (JSON.parse(r.stdout) as Recovery[])[0]!;
}

/** The source's agent, alone, lets the domain run again on lab-a: it writes on. */
async function resumedAlone(vm: string): Promise<number> {
  await until('the source agent to resume the domain', async () => ((await domainState('lab-a', vm)) === 'running' ? true : undefined));
  return waitForCounter(a, vm, (await counter(a, vm)) + 3);
}

test('libvirt warm: ferry killed while the domain is suspended for the last pass: the source agent resumes it alone, recover leaves b only the pre-copy, and a rerun completes from it', async () => {
  const vm = 'lvw-held';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M']);
  const id = await killedAt(vm, 'source-suspended', ['--mode', 'warm'], async () => assert.equal(await domainState('lab-a', vm), 'paused'));
  await resumedAlone(vm);
  const r = await recover(id);
  assert.deepEqual(r.runs_on, ['lab-a'], JSON.stringify(r));
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined, 'no domain on b');
  assert.deepEqual(await ferryLeftovers('lab-a', vm), [], 'no pass node or job left in the source QEMU');
  assert.match(await labVirsh('lab-a', ['domjobinfo', vm]), /Job type:\s+None/);
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);

  const again = await migrate(vm, ['--mode', 'warm']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.equal((again.passes as Pass[])[0]!.kind, 'changes', 'the rerun continues from the pre-copy kept on b');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});

test('libvirt warm --reboot (UEFI): ferry killed while the domain is held suspended, or as it copies the variable store: the source agent resumes it alone, and the rerun continues into the store it began; killed right after the commit: ferry recover keeps the target and removes the older copy', async () => {
  const vm = 'lvw-rbhold';
  const reboot = ['--reboot', '--force-off'];
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M', '--uefi']);

  const held = await killedAt(vm, 'source-paused', reboot, async () => assert.equal(await domainState('lab-a', vm), 'paused'));
  await resumedAlone(vm);
  const r1 = await recover(held);
  assert.deepEqual(r1.runs_on, ['lab-a'], JSON.stringify(r1));
  assert.equal(await domainState('lab-b', vm), undefined, 'no domain on b');
  assert.deepEqual(await ferryLeftovers('lab-a', vm), []);

  // Killed as the variable store's copy begins, after the last pass: the guest is stopped, its disks are whole on b.
  const copying = await killedAt(vm, 'vm-file-copying', reboot, async () => assert.equal(await domainState('lab-a', vm), 'paused'));
  await resumedAlone(vm);
  const r3 = await recover(copying);
  assert.deepEqual(r3.runs_on, ['lab-a'], JSON.stringify(r3));
  assert.equal(await domainState('lab-b', vm), undefined, 'no domain on b');
  assert.ok((await b.call('file.stat', { path: labNvramPath(vm) })).exists, 'the store begun on b is kept for the rerun, as the disks are');

  // The rerun, killed once the domain has booted on b: the commit point, the source's copy still held paused.
  const rerun = await killedMove(vm, 'committed', reboot);
  const committed = rerun.id()!;
  const store = rerun.entries().filter((e) => e.path === labNvramPath(vm));
  assert.ok(store.some((e) => e.step === 'vm-file-copied') && !store.some((e) => e.step === 'created'), `the rerun copied into the store it began, not a new one: ${JSON.stringify(store)}`);
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.equal(await domainState('lab-a', vm), 'paused', 'the older copy waits, stopped, for the finish');
  const r2 = await recover(committed);
  assert.equal(r2.settlement?.outcome, 'committed', JSON.stringify(r2));
  assert.deepEqual(r2.runs_on, ['lab-b']);
  assert.equal(await domainState('lab-a', vm), undefined, 'the older copy is destroyed and undefined on a');
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.ok((await a.call('file.stat', { path: diskPath(vm) })).exists, "the source's disk is kept (no --delete-source)");
  await waitForCounter(b, vm, 3);
  const again = await ferry(['recover', committed, '--json']);
  assert.deepEqual(JSON.parse(again.stdout), [], 'nothing left to recover');
  await cleanDomain([a, b], vm, 1);
});

test("libvirt warm --reboot (UEFI): the source's agent, the target's agent or the ssh link to lab-b lost as the variable store is copied (the guest stopped, its disks whole on lab-b): the domain runs again on lab-a, nothing is defined on lab-b, recover has nothing left, and a rerun completes", async () => {
  const vm = 'lvw-rbfile';
  const reboot = ['--reboot', '--force-off'];
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M', '--uefi']);
  try {
    for (const fault of ['source-agent', 'target-agent', 'link'] as const) {
      const where = `${fault} at vm-file-copying`;
      const m = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...reboot], 'vm-file-copying');
      await m.held();
      assert.equal(await domainState('lab-a', vm), 'paused', `${where}: the guest is stopped for the copy`);
      if (fault === 'link') assert.ok(cutSshLinks(m.child.pid!, 'lab-b'), `${where}: the controller holds an ssh link to lab-b`);
      else assert.ok(await killMoveAgent(m.entries(), fault === 'source-agent' ? 'source' : 'target'), `${where}: the journal names the agents`);
      process.kill(m.child.pid!, 'SIGCONT');
      const result = await m.done;
      const report = JSON.parse(result.stdout) as { status: string; source_running?: boolean };
      assert.notEqual(report.status, 'completed', `${where}: ${result.stdout}`);
      await resumedAlone(vm);
      assert.equal(await domainState('lab-b', vm), undefined, `${where}: no domain on lab-b`);
      const r = await ferry(['recover', m.id()!, '--json']);
      assert.equal(r.code, 0, `${where}: ${r.stdout} ${r.stderr}`);
      assert.ok(['nothing-to-do', 'closed', undefined].includes((JSON.parse(r.stdout) as Array<{ status: string }>)[0]?.status), `${where}: recover has nothing left: ${r.stdout}`);
      assert.equal(await domainState('lab-a', vm), 'running', `${where}: still running on lab-a after recover`);
    }
    const done = JSON.parse((await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...reboot])).stdout) as { status: string };
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(await domainState('lab-b', vm), 'running');
    await waitForCounter(b, vm, 3, 180_000);
  } finally {
    await cleanDomain([a, b], vm, 1);
  }
});
