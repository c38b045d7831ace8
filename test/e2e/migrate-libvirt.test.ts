/**
 * Live migration of libvirt domains end to end: each lab host runs its own
 * libvirtd, the test guest runs as a domain (TCG) and writes records
 * without pause; ferry checks, makes the target images and has the two
 * libvirtds migrate peer to peer. The controller, an agent or the link lost
 * at each step of a live move: migrate-libvirt-faults.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labDir } from '../../src/hosts/inventory.js';
import { GUEST_APPEND } from '../../src/lab/guest-image.js';
import { LAB_SHARED_DIR, changeLabLibvirtd, changeLabNetView, labHost, labVirsh } from '../../src/lab/lab.js';
import { labNvramPath } from '../../src/lab/vm.js';
import { counter, diskPath, ferry, ferryHeldAt, labVmPaths, lastJournal, moveWithAgentKilledAt, readSerial, startHeldMove, stateDir, until, useLab, waitForCounter } from './harness.js';
import { GUEST_READY } from '../../src/lab/records.js';
import { cleanDomain as cleanLibvirtDomain, definePool, domainLogs, domainState, incomingQemu, removePool, startDomain as startLibvirtDomain, type TestPool } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const cleanDomain = (name: string, disks = 2): Promise<void> => cleanLibvirtDomain([a, b], name, disks);
const startDomain = (name: string, extra: string[] = []): Promise<void> => startLibvirtDomain(a, name, extra);

async function migrate(vm: string, from: string, to: string, extra: string[] = []): Promise<Record<string, unknown>> {
  const r = await ferry(['migrate', vm, '--from', from, '--to', to, '--json', ...extra]);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('libvirt: a domain moves a->b->a with its two disks and its autostart, keeps writing, and loses no record', async () => {
  const vm = 'lv-ab';
  await cleanDomain(vm);
  await startDomain(vm, ['--disk', '48M', '--disk', '32M']);
  await labVirsh('lab-a', ['autostart', vm]);
  const before = await counter(a, vm);

  const r1 = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
  assert.equal(r1.status, 'completed', JSON.stringify(r1));
  assert.equal(r1.driver, 'libvirt');
  assert.ok((r1.downtime_ms as number) > 0 && (r1.ram_bytes as number) > 0);
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.equal(await domainState('lab-a', vm), undefined, 'undefined on the source');
  assert.match(await labVirsh('lab-b', ['dominfo', vm]), /Persistent:\s+yes/);
  assert.match(await labVirsh('lab-b', ['dominfo', vm]), /Autostart:\s+enable/, 'autostart comes along');
  assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, '--delete-source removed the source disk');
  const onB = await waitForCounter(b, vm, before + 10);

  const r2 = await migrate(vm, 'lab-b', 'lab-a', ['--keep-source-definition']);
  assert.equal(r2.status, 'completed', JSON.stringify(r2));
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), 'shut off', '--keep-source-definition leaves it defined on the source');
  assert.match(await labVirsh('lab-a', ['dominfo', vm]), /Autostart:\s+enable/);
  assert.match(await labVirsh('lab-b', ['dominfo', vm]), /Autostart:\s+disable/, 'the definition kept on the source no longer starts at boot');
  const onA = await waitForCounter(a, vm, onB + 10);

  await labVirsh('lab-a', ['destroy', vm]);
  const check = await a.call('lab.checkRecords', { disks: [diskPath(vm, 0), diskPath(vm, 1)], serialLogs: [labVmPaths(vm).serialLog], lastReported: onA });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  assert.ok(check.lastReportedSeq >= onA);
  await cleanDomain(vm);
});

/** A migration a -> b, held (SIGSTOP) right after libvirt's migration started; `strike` runs then, and the controller goes on. */
async function heldMigration(vm: string, strike: (controllerPid: number) => Promise<void>): Promise<Record<string, unknown>> {
  const r = await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--bandwidth', '4'], 'libvirt-migrate', strike);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function assertRolledBack(vm: string, report: Record<string, unknown>, status: string): Promise<void> {
  if (report.status !== status || report.source_running !== true) assert.fail(`${JSON.stringify(report)}\n${await domainLogs([a, b], vm)}`);
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined, 'no domain left on the target');
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image left on the target');
  assert.equal(incomingQemu(vm), undefined, 'no QEMU left on the target');
  assert.match(await labVirsh('lab-a', ['domjobinfo', vm]), /Job type:\s+None/, 'no job left on the source');
  const n = await counter(a, vm);
  await waitForCounter(a, vm, n + 5);
}

test('libvirt: Ctrl-C while the disks copy rolls back; the domain runs on where it was', async () => {
  const vm = 'lv-int';
  await cleanDomain(vm);
  await startDomain(vm);
  const report = await heldMigration(vm, async (pid) => {
    await until('the incoming QEMU', () => incomingQemu(vm));
    process.kill(pid, 'SIGINT');
  });
  await assertRolledBack(vm, report, 'aborted');
  // And the next migration goes through.
  const r = await migrate(vm, 'lab-a', 'lab-b');
  assert.equal(r.status, 'completed', JSON.stringify(r));
  await cleanDomain(vm);
});

test('libvirt: a domain dirtying RAM faster than --bandwidth gets a will-not-converge warning while libvirt holds the limits asked for; Ctrl-C at the terminal rolls back', async () => {
  const vm = 'lv-dirty';
  await cleanDomain(vm);
  await startDomain(vm, ['--memory', '128', '--dirty', '32', '--disk', '16M']);
  let limits: Promise<{ downtime: string; speed: string }> | undefined;
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--bandwidth', '8', '--max-downtime', '150'], {
    onStderr: (chunk, child) => {
      if (limits || !/will not converge/.test(chunk)) return;
      // What the source's libvirtd applies to the job under way, read before the Ctrl-C a terminal would send to the whole group.
      limits = Promise.all([labVirsh('lab-a', ['migrate-getmaxdowntime', vm]), labVirsh('lab-a', ['migrate-getspeed', vm])])
        .finally(() => process.kill(-child.pid!, 'SIGINT'))
        .then(([downtime, speed]) => ({ downtime: downtime.trim(), speed: speed.trim() }));
    },
    ownGroup: true,
  });
  assert.ok(limits, `no convergence warning in: ${r.stderr.slice(-2000)}`);
  assert.deepEqual(await limits, { downtime: '150', speed: '8' }, '--max-downtime and --bandwidth reach the job');
  assert.match(r.stderr, /The guest dirties [\d.]+ MiB\/s of RAM, as fast as the [\d.]+ MiB\/s the link carries.*Raise --bandwidth, pass --auto-converge/s);
  assert.notEqual(r.code, 0);
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined, 'no domain left on the target');
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image left on the target');
  assert.match(await labVirsh('lab-a', ['domjobinfo', vm]), /Job type:\s+None/, 'no job left on the source');
  const warning = lastJournal(vm).find((e) => e.step === 'warning');
  assert.equal(warning?.code, 'NOT_CONVERGING', 'the warning is in the journal');
  const n = await counter(a, vm);
  await waitForCounter(a, vm, n + 3);
  await cleanDomain(vm);
});

test('libvirt: a target QEMU killed during the move is rolled back', async () => {
  const vm = 'lv-kill';
  await cleanDomain(vm);
  await startDomain(vm);
  const report = await heldMigration(vm, async () => {
    const pid = await until('the incoming QEMU', () => incomingQemu(vm));
    process.kill(pid, 'SIGKILL');
    await until('the incoming QEMU to go', () => (incomingQemu(vm) === undefined ? true : undefined));
  });
  await assertRolledBack(vm, report, 'failed');
  await cleanDomain(vm);
});

test('libvirt: bad input, and a domain with a snapshot or a saved state, is refused before anything is made', async () => {
  const vm = 'lv-bad';
  await cleanDomain(vm);
  await startDomain(vm);
  const unknown = await migrate('no-such-domain', 'lab-a', 'lab-b');
  assert.equal(unknown.status, 'failed');
  assert.equal((unknown.error as { code: string }).code, 'UNKNOWN_VM');
  assert.match((unknown.error as { hint: string }).hint, new RegExp(vm));

  await b.call('image.create', { path: diskPath(vm), format: 'qcow2', sizeBytes: 1 << 20 });
  const taken = await migrate(vm, 'lab-a', 'lab-b');
  assert.equal((taken.error as { code: string }).code, 'TARGET_EXISTS');
  assert.match((taken.error as { hint: string }).hint, /--disk-map/);
  assert.equal(await domainState('lab-b', vm), undefined);
  assert.equal(await domainState('lab-a', vm), 'running');
  await b.call('file.remove', { path: diskPath(vm) });

  // An inventory that has the source's libvirtd reach lab-b's by plain TCP off loopback, where lab-b's takes every TCP client.
  const exposed = join(stateDir, 'hosts-exposed.yaml');
  const labB = (parse(readFileSync(join(labDir(), 'hosts.yaml'), 'utf8')) as { hosts: Record<string, Record<string, unknown>> }).hosts['lab-b'];
  await writeFile(exposed, stringify({ hosts: { 'lab-b': { ...labB, libvirt_uri: 'qemu+tcp://192.0.2.1/system' } } }));
  const open = await migrate(vm, 'lab-a', 'lab-b', ['--hosts', exposed]);
  assert.equal((open.error as { code: string }).code, 'INSECURE_TRANSPORT', JSON.stringify(open));
  assert.match((open.error as { message: string }).message, /libvirt on "lab-b" takes TCP clients without authentication \(auth_tcp = "none"\)/);
  assert.match((open.error as { hint: string }).hint, /qemu\+ssh is the default/);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');

  // A filesystem on the target smaller than any qcow2 the guest has written to.
  const small = '/var/lib/ferry/small';
  await b.call('system.run', { file: 'mkdir', args: ['-p', small] });
  await b.call('system.run', { file: 'mount', args: ['-t', 'tmpfs', '-o', 'size=64k', 'ferry-e2e-small', small] });
  try {
    const full = await migrate(vm, 'lab-a', 'lab-b', ['--disk-map', `${diskPath(vm)}=${small}/disk.qcow2`]);
    assert.equal((full.error as { code: string }).code, 'NO_SPACE', JSON.stringify(full));
    assert.match((full.error as { message: string }).message, /Host "lab-b" has 0\.\d MiB free in "\/var\/lib\/ferry\/small"; the disks need about [\d.]+ MiB/);
    assert.match((full.error as { hint: string }).hint, /--disk-map/);
    assert.deepEqual((await b.call('system.run', { file: 'ls', args: ['-A', small] })).stdout, '', 'nothing made there');
  } finally {
    await b.call('system.run', { file: 'umount', args: [small] });
  }
  assert.equal(await domainState('lab-b', vm), undefined);
  assert.equal(await domainState('lab-a', vm), 'running');

  // What a move would lose: a running state saved to disk (the domain would boot afresh), a snapshot.
  await labVirsh('lab-a', ['managedsave', vm]);
  const saved = await migrate(vm, 'lab-a', 'lab-b');
  assert.equal((saved.error as { code: string }).code, 'INCOMPATIBLE', JSON.stringify(saved));
  assert.match((saved.error as { message: string }).message, /is shut off with its running state saved/);
  assert.match((saved.error as { hint: string }).hint, /virsh managedsave-remove lv-bad/);
  await labVirsh('lab-a', ['managedsave-remove', vm]);
  await labVirsh('lab-a', ['snapshot-create-as', vm, 'before-upgrade']);
  const snapshot = await migrate(vm, 'lab-a', 'lab-b');
  assert.equal((snapshot.error as { code: string }).code, 'INCOMPATIBLE', JSON.stringify(snapshot));
  assert.match((snapshot.error as { message: string }).message, /has a snapshot \(before-upgrade\), which would not come along/);
  assert.equal(await domainState('lab-b', vm), undefined);
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
  await labVirsh('lab-a', ['snapshot-delete', vm, '--snapshotname', 'before-upgrade']);
  await cleanDomain(vm);
});

test("libvirt: a target without libvirtd, or whose libvirtd has the source's host UUID or does not know the domain's CPU model, is refused before anything is made", async () => {
  const vm = 'lv-host';
  await cleanDomain(vm);
  await startDomain(vm);
  const nothingMade = async (): Promise<void> => {
    assert.equal(await domainState('lab-b', vm), undefined);
    assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
    assert.equal(await domainState('lab-a', vm), 'running');
  };
  try {
    // No libvirtd on the target: refused, with what to start where.
    const libvirtd = (await labHost('lab-b')).libvirtdPid;
    process.kill(libvirtd, 'SIGTERM');
    await until("lab-b's libvirtd to stop", () => (processGone(libvirtd) ? true : undefined));
    const down = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal((down.error as { code: string }).code, 'UNREACHABLE', JSON.stringify(down.error));
    assert.match((down.error as { message: string }).message, /Cannot reach libvirt at "qemu:\/\/\/system" on host "lab-b"/);
    assert.match((down.error as { hint: string }).hint, /start libvirtd on host "lab-b"/);
    assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
    assert.equal(await domainState('lab-a', vm), 'running');

    // Seed 002: two hosts cloned from one image share an SMBIOS UUID, and libvirt takes it for its own.
    await changeLabLibvirtd('lab-b', { hostUuid: (await labHost('lab-a')).hostUuid });
    const same = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal((same.error as { code: string }).code, 'SAME_HOST_UUID', JSON.stringify(same.error));
    assert.match((same.error as { hint: string }).hint, /host_uuid/);
    await nothingMade();

    // An older libvirt on the target, which does not know the model the domain runs with.
    await changeLabLibvirtd('lab-b', { withoutCpuModels: ['qemu64'] });
    const cpu = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal((cpu.error as { code: string }).code, 'INCOMPATIBLE_CPU', JSON.stringify(cpu.error));
    assert.match((cpu.error as { message: string }).message, /qemu64/);
    assert.match((cpu.error as { hint: string }).hint, /virsh/);
    await nothingMade();
  } finally {
    await changeLabLibvirtd('lab-b');
  }
  // The same domain moves once lab-b's libvirtd is itself again: the refusals came from the differences.
  const r = await migrate(vm, 'lab-a', 'lab-b');
  assert.equal(r.status, 'completed', JSON.stringify(r));
  await cleanDomain(vm);
});

test("libvirt --offline: ferry killed while the guest powers off on ACPI: the source's agent starts the domain again by itself; then the guest is shut down without --force-off, moved cold, and holds every record on the target", async () => {
  const vm = 'lv-acpi';
  await cleanDomain(vm);
  await startDomain(vm, ['--append', `${GUEST_APPEND} ferry.acpi=poweroff`]);
  const serial = async (): Promise<string> => (await a.call('file.read', { path: labVmPaths(vm).serialLog })).text;

  // Killed once the power-off is asked for: the guest goes down, and no controller is left to bring it back.
  const held = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--offline', '--no-start', '--json'], 'source-stopping');
  await held.held();
  const id = held.id()!;
  process.kill(held.child.pid!, 'SIGKILL');
  await held.done;
  await until(
    'the guest to power off, and the source agent to start it again',
    async () => {
      const text = await serial();
      return text.includes('FERRY-GUEST-POWEROFF') && text.lastIndexOf('FERRY-GUEST-READY') > text.lastIndexOf('FERRY-GUEST-POWEROFF') && (await domainState('lab-a', vm)) === 'running'
        ? true
        : undefined;
    },
    120_000,
    250,
  );
  await waitForCounter(a, vm, (await counter(a, vm)) + 1);
  assert.equal(await domainState('lab-b', vm), undefined, 'nothing defined on the target');
  assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
  const recover = await ferry(['recover', id, '--json']);
  const [recovery] = JSON.parse(recover.stdout) as Array<{ status: string; runs_on: string[] }>;
  assert.ok(['nothing-to-do', 'closed'].includes(recovery!.status), recover.stdout);
  assert.deepEqual(recovery!.runs_on, ['lab-a']);

  // The source's agent killed at the same step: ferry, with a new agent, takes its hold over and starts the domain again.
  const poweroffs = (await serial()).split('FERRY-GUEST-POWEROFF').length;
  const { report: failed, move: lost } = await moveWithAgentKilledAt(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--offline', '--no-start', '--json'], 'source-stopping', 'source');
  assert.equal(failed.status, 'failed', JSON.stringify(failed));
  assert.equal(failed.failed_phase, 'stop');
  assert.equal(lost.entries().find((e) => e.step === 'source-started')?.by, 'taken-over', 'by the new agent, from the dead one');
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.ok((await serial()).split('FERRY-GUEST-POWEROFF').length > poweroffs, 'it had powered off');
  await waitForCounter(a, vm, (await counter(a, vm)) + 1);
  assert.equal(await domainState('lab-b', vm), undefined, 'nothing defined on the target');

  const r = await migrate(vm, 'lab-a', 'lab-b', ['--offline', '--no-start']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.mode, 'cold');
  assert.match(await serial(), /FERRY-GUEST-POWEROFF/, 'the guest powered itself off');
  const steps = readFileSync(r.journal as string, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: string; state?: string });
  assert.equal(steps.find((s) => s.step === 'source-shut-down')?.state, 'shut off');
  assert.ok(!steps.some((s) => s.step === 'source-forced-off'), 'its power was not cut');
  const reported = await counter(a, vm);
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: [], lastReported: reported });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  assert.equal(await domainState('lab-a', vm), undefined, 'undefined on the source');
  await labVirsh('lab-b', ['start', vm]);
  await waitForCounter(b, vm, 5);
  await cleanDomain(vm);
});

test('libvirt: a shut-off domain moves cold with its disks copied and its autostart, and boots on the target with every record', async () => {
  const vm = 'lv-off';
  await cleanDomain(vm);
  await startDomain(vm, ['--disk', '48M']);
  await waitForCounter(a, vm, (await counter(a, vm)) + 5);
  await labVirsh('lab-a', ['destroy', vm]);
  await labVirsh('lab-a', ['autostart', vm]);
  const reported = await counter(a, vm);

  const r = await migrate(vm, 'lab-a', 'lab-b', ['--no-start']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.mode, 'cold');
  assert.match(await labVirsh('lab-b', ['dominfo', vm]), /Autostart:\s+enable/, 'autostart comes along');
  assert.ok((r.disk_bytes as number) > 0 && (r.disk_bytes as number) < 48 * 1024 * 1024, `only the written data crossed: ${String(r.disk_bytes)}`);
  assert.equal(await domainState('lab-b', vm), 'shut off', 'defined on the target, not started (--no-start)');
  assert.equal(await domainState('lab-a', vm), undefined, 'undefined on the source');
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: [], lastReported: reported });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);

  await labVirsh('lab-b', ['start', vm]);
  await waitForCounter(b, vm, 5);
  await cleanDomain(vm);
});

test('libvirt: a disk reached over the network (an NBD export both hosts reach) stays where it is: the domain moves live without copying it, and --delete-source leaves it', async () => {
  const vm = 'lv-nbd';
  const image = `${LAB_SHARED_DIR}/${vm}.qcow2`;
  const pidFile = `${LAB_SHARED_DIR}/${vm}.nbd.pid`;
  await cleanDomain(vm, 0);
  await a.call('file.remove', { path: image });
  await a.call('image.create', { path: image, format: 'qcow2', sizeBytes: 48 * 1024 * 1024 });
  // The network storage: an NBD server on loopback, which both lab hosts reach, serving the image to several clients.
  const { port } = await a.call('net.freePort', { address: '127.0.0.1' });
  const server = await a.call('system.run', {
    file: 'qemu-nbd',
    args: ['--fork', '--persistent', '--shared=4', '--bind=127.0.0.1', `--port=${port}`, '--export-name=rec', '--format=qcow2', `--pid-file=${pidFile}`, image],
  });
  assert.equal(server.exitCode, 0, server.stderr);
  const url = `nbd://127.0.0.1:${port}/rec`;
  try {
    await startDomain(vm, ['--disk', url]);
    const before = await counter(a, vm);
    const r = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(r.status, 'completed', JSON.stringify(r));
    const disks = r.disks as Array<{ device: string; target: { path: string; shared?: boolean; created: boolean } }>;
    assert.deepEqual(
      disks.map((d) => [d.device, d.target.path, d.target.shared, d.target.created]),
      [['vda', url, true, false]],
    );
    const args = lastJournal(vm).find((e) => e.step === 'libvirt-migrate')?.args as string[];
    assert.ok(!args.includes('--migrate-disks') && !args.some((arg) => arg.startsWith('--copy-storage')), `libvirt copies no storage: ${args.join(' ')}`);
    assert.equal(await domainState('lab-a', vm), undefined);
    const n = await waitForCounter(b, vm, before + 5);
    assert.equal((await a.call('file.stat', { path: image })).exists, true, '--delete-source leaves storage both hosts reach');
    const check = await b.call('lab.checkRecords', { disks: [image], serialLogs: [], lastReported: n, forceShare: true });
    assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
    assert.equal(check.corruptReportedCount, 0);
  } finally {
    await cleanDomain(vm, 0);
    const pid = (await a.call('system.run', { file: 'cat', args: [pidFile] })).stdout.trim();
    if (pid) await a.call('system.run', { file: 'kill', args: [pid] });
    for (const path of [image, pidFile]) await a.call('file.remove', { path });
  }
});

test('libvirt: a shut-off domain on Ceph RBD is refused while the target lacks the secret its disk logs in with; --copy-secrets carries it, value included, unless it is private; ferry killed once it is defined there leaves recover to undefine it; the disk is not copied', async () => {
  const vm = 'lv-rbd';
  const uuid = '2a7a4c2b-97c4-4d1a-9e3b-7f0d8c7e5a11';
  const url = `rbd://127.0.0.1:6789/vms/${vm}`;
  const secretFile = `${LAB_SHARED_DIR}/${vm}-secret.xml`;
  const domainFile = `${LAB_SHARED_DIR}/${vm}.xml`;
  const secretXml = (priv: 'yes' | 'no'): string => `<secret ephemeral='no' private='${priv}'><uuid>${uuid}</uuid><usage type='ceph'><name>client.ferry secret</name></usage></secret>`;
  const defineSecret = async (priv: 'yes' | 'no'): Promise<void> => {
    await labVirsh('lab-a', ['secret-undefine', uuid]).catch(() => undefined);
    await a.call('file.write', { path: secretFile, text: secretXml(priv) });
    await labVirsh('lab-a', ['secret-define', secretFile]);
    await labVirsh('lab-a', ['secret-set-value', uuid, '--base64', Buffer.from(`ceph-key-${priv}`).toString('base64')]);
  };
  const secretOnB = async (): Promise<boolean> => (await labVirsh('lab-b', ['secret-list'])).includes(uuid);
  const clean = async (): Promise<void> => {
    for (const host of ['lab-a', 'lab-b']) {
      await labVirsh(host, ['undefine', vm]).catch(() => undefined);
      await labVirsh(host, ['secret-undefine', uuid]).catch(() => undefined);
    }
  };
  await clean();
  // Defined only: no Ceph here, and QEMU without its RBD driver; the move is cold and --no-start.
  await a.call('file.write', {
    path: domainFile,
    text: `<domain type='qemu'><name>${vm}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
      <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/><auth username='ferry'><secret type='ceph' uuid='${uuid}'/></auth>
      <source protocol='rbd' name='vms/${vm}'><host name='127.0.0.1' port='6789'/></source><target dev='vda' bus='virtio'/></disk></devices></domain>`,
  });
  try {
    await defineSecret('yes');
    await labVirsh('lab-a', ['define', domainFile]);
    const missing = await migrate(vm, 'lab-a', 'lab-b', ['--no-start']);
    assert.equal((missing.error as { code: string }).code, 'NOT_FOUND', JSON.stringify(missing));
    assert.match((missing.error as { message: string }).message, new RegExp(`Disk vda of domain "${vm}" logs in to its storage with secret ${uuid}, which is not defined on "lab-b"`));
    assert.match((missing.error as { hint: string }).hint, /--copy-secrets.*virsh secret-define/);
    assert.equal(await domainState('lab-b', vm), undefined, 'nothing defined on the target');

    // A private secret's value never leaves libvirt: refused, nothing made on the target.
    const secret = await migrate(vm, 'lab-a', 'lab-b', ['--no-start', '--copy-secrets']);
    assert.equal((secret.error as { code: string }).code, 'SECRET_PRIVATE', JSON.stringify(secret));
    assert.equal(await secretOnB(), false, 'no secret defined on the target');
    assert.equal(await domainState('lab-b', vm), undefined, 'nothing defined on the target');

    // Killed once the secret and the domain are defined on the target: recover undefines both there.
    await defineSecret('no');
    const held = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--no-start', '--copy-secrets'], 'target-defined');
    await held.held();
    assert.equal(await secretOnB(), true, 'the secret is defined on the target before the domain');
    process.kill(held.child.pid!, 'SIGKILL');
    await held.done;
    const recovered = JSON.parse((await ferry(['recover', held.id()!, '--json'])).stdout) as Array<{ status: string }>;
    assert.equal(recovered[0]?.status, 'settled', JSON.stringify(recovered));
    assert.equal(await secretOnB(), false, 'recover undefined the secret the killed move defined');
    assert.equal(await domainState('lab-b', vm), undefined);
    assert.equal(await domainState('lab-a', vm), 'shut off');

    const moved = await migrate(vm, 'lab-a', 'lab-b', ['--no-start', '--copy-secrets']);
    assert.equal(moved.status, 'completed', JSON.stringify(moved));
    assert.equal(moved.disk_bytes, 0);
    const disks = moved.disks as Array<{ device: string; target: { path: string; shared?: boolean } }>;
    assert.deepEqual(
      disks.map((d) => [d.device, d.target.path, d.target.shared]),
      [['vda', url, true]],
    );
    assert.equal(await domainState('lab-a', vm), undefined);
    assert.equal(await domainState('lab-b', vm), 'shut off');
    assert.match(await labVirsh('lab-b', ['dumpxml', vm]), new RegExp(`<secret type='ceph' uuid='${uuid}'/>`));
    assert.equal((await labVirsh('lab-b', ['secret-get-value', uuid])).trim(), (await labVirsh('lab-a', ['secret-get-value', uuid])).trim(), 'the same value on both hosts');
    assert.doesNotMatch(readFileSync(moved.journal as string, 'utf8'), new RegExp(Buffer.from('ceph-key-no').toString('base64')), 'the value is not in the journal');
  } finally {
    await clean();
    for (const path of [secretFile, domainFile]) await a.call('file.remove', { path });
  }
});

/** A new 48 MiB image for `vm` in the directory both lab hosts share, replacing any left there. */
async function newSharedImage(vm: string, format: 'qcow2' | 'raw'): Promise<string> {
  const path = `${LAB_SHARED_DIR}/${vm}.${format}`;
  await a.call('file.remove', { path });
  await a.call('image.create', { path, format, sizeBytes: 48 * 1024 * 1024 });
  return path;
}

/** Whether process `pid` has ended. */
function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

test('libvirt: a qcow2 on a backing file moves live to another path (--disk-map): only the top crosses, both XMLs name the new path, the flags reach libvirt; the base, a qcow2 laid out otherwise on the target, is found the same disk', async () => {
  const vm = 'lv-base';
  const base = '/var/lib/ferry/images/lv-base-base.qcow2';
  const top = diskPath(vm);
  const mapped = '/var/lib/ferry/images/lv-base-mapped.qcow2';
  await cleanDomain(vm, 1);
  // The same 64 MiB base disk on both hosts, full of data, so a full copy would show; as qcow2 files with
  // other cluster sizes, so that their bytes differ (as after "ferry sync" or qemu-img convert).
  for (const [h, cluster] of [
    [a, '65536'],
    [b, '131072'],
  ] as const) {
    for (const path of [top, mapped]) await h.call('file.remove', { path });
    const raw = `${base}.raw`;
    await h.call('system.run', {
      file: 'sh',
      args: ['-c', `head -c 67108864 /dev/zero | tr '\\0' 'x' > ${raw} && qemu-img convert -f raw -O qcow2 -o cluster_size=${cluster} ${raw} ${base} && rm ${raw}`],
    });
  }
  const sums = await Promise.all([a, b].map(async (h) => (await h.call('file.sha256', { path: base })).sha256));
  assert.notEqual(sums[0], sums[1], 'the two base files differ byte for byte');
  await a.call('image.create', { path: top, format: 'qcow2', sizeBytes: 64 * 1024 * 1024, backingFile: base, backingFormat: 'qcow2' });
  await startDomain(vm, ['--disk', top]);
  const r = await migrate(vm, 'lab-a', 'lab-b', ['--disk-map', `${top}=${mapped}`, '--max-downtime', '200', '--auto-converge', '--bandwidth', '500']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.ok((r.disk_bytes as number) < 32 * 1024 * 1024, `only the top crossed: ${String(r.disk_bytes)} bytes`);
  const chain = await b.call('image.chain', { path: mapped });
  assert.equal(chain[0]?.format, 'qcow2');
  assert.equal(chain[0]?.virtualSize, 64 * 1024 * 1024);
  assert.equal(chain[1]?.filename, base, 'the target image keeps its backing file');
  assert.equal((await b.call('file.stat', { path: top })).exists, false, 'nothing was made at the source path');
  assert.match(await labVirsh('lab-b', ['domblklist', vm]), new RegExp(`vda\\s+${mapped}`));
  assert.match(await labVirsh('lab-b', ['dumpxml', '--inactive', vm]), new RegExp(`<source file='${mapped}'`));
  const journal = lastJournal(vm);
  assert.ok(
    journal.some((e) => e.step === 'log' && e.message === `backing file ${base} holds the same disk on both hosts: only the top of ${top} crosses`),
    'the base is compared by the disk it holds',
  );
  const args = journal.find((e) => e.step === 'libvirt-migrate')?.args as string[];
  for (const flag of ['--copy-storage-inc', '--copy-storage-synchronous-writes', '--auto-converge', '--persistent', '--undefinesource']) assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
  assert.equal(args[args.indexOf('--bandwidth') + 1], '500');
  assert.equal(journal.find((e) => e.step === 'start')?.max_downtime_ms, 200);
  // The source's definition, kept for whoever wants it back.
  assert.match(String(journal.find((e) => e.step === 'source-definition')?.xml), new RegExp(`<source file='${top}'`));
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 5);
  await labVirsh('lab-b', ['destroy', vm]);
  const check = await b.call('lab.checkRecords', { disks: [mapped], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  // Slots the guest has not reached yet show the base's bytes, not records: only reported records count here.
  assert.equal(check.missingCount, 0, JSON.stringify(check.missing));
  assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
  await cleanDomain(vm, 1);
  for (const h of [a, b]) for (const path of [base, mapped]) await h.call('file.remove', { path });
});

test('libvirt: a running domain moves cold with --shutdown --force-off, and runs on the target', async () => {
  const vm = 'lv-cold';
  await cleanDomain(vm);
  await startDomain(vm);
  const refused = await migrate(vm, 'lab-a', 'lab-b', ['--mode', 'cold']);
  assert.equal((refused.error as { code: string }).code, 'VM_RUNNING', 'a running domain is not powered off unless asked');
  assert.equal(await domainState('lab-a', vm), 'running');
  // The test guest ignores ACPI: without --force-off the move stops there, the domain running on.
  const unmoved = await migrate(vm, 'lab-a', 'lab-b', ['--mode', 'cold', '--shutdown', '--shutdown-timeout', '1']);
  assert.equal((unmoved.error as { code: string }).code, 'VM_RUNNING', JSON.stringify(unmoved.error));
  assert.match((unmoved.error as { hint: string }).hint, /--force-off/);
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined);
  // With it, its power is cut after the time-out, its disk closed by QEMU.
  const r = await migrate(vm, 'lab-a', 'lab-b', ['--mode', 'cold', '--shutdown', '--shutdown-timeout', '1', '--force-off']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(await domainState('lab-b', vm), 'running');
  assert.equal(await domainState('lab-a', vm), undefined);
  await waitForCounter(b, vm, 5);
  await cleanDomain(vm);
});

/** Runs `ferry migrate` a -> b held at `step` (SIGSTOP), then kills it there. */
async function killedAt(vm: string, step: string): Promise<void> {
  await ferryHeldAt(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json'], step, async (pid) => void process.kill(pid, 'SIGKILL'));
}

test('libvirt: a cold move killed after its first disk continues where it stopped: that disk does not cross again', async () => {
  const vm = 'lv-resume';
  await cleanDomain(vm);
  await startDomain(vm, ['--disk', '32M', '--disk', '32M']);
  await labVirsh('lab-a', ['destroy', vm]);
  // The first disk copied, then ferry dies.
  await killedAt(vm, 'copied');
  assert.equal(await domainState('lab-a', vm), 'shut off', 'the source keeps the domain');
  assert.equal(await domainState('lab-b', vm), undefined);
  const first = await b.call('file.stat', { path: diskPath(vm, 0) });
  assert.ok(first.exists, 'the copy of the first disk is kept for the next run');

  const r = await migrate(vm, 'lab-a', 'lab-b', ['--no-start']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  const journal = lastJournal(vm) as Array<{ step: string; path?: string; bytes_sent?: number; blocks_resumed?: number }>;
  const copied = journal.filter((e) => e.step === 'copied');
  const again = copied.find((e) => e.path === diskPath(vm, 0));
  assert.ok(again, 'the first disk was checked again');
  assert.ok((again.bytes_sent ?? Infinity) < 256 * 1024, `the first disk's data did not cross again: ${again.bytes_sent} bytes`);
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm, 0), diskPath(vm, 1)], serialLogs: [], lastReported: await counter(a, vm) });
  assert.equal(check.missingCount, 0);
  await cleanDomain(vm);
});

test('libvirt: a read-only disk (a CD-ROM image), which libvirt will not mirror, is copied by ferry before the move, the same on the target; --delete-source keeps it; moved back, the image still there is used, not copied', async () => {
  const vm = 'lv-cdrom';
  const iso = '/var/lib/ferry/images/lv-cdrom.iso';
  await cleanDomain(vm, 1);
  for (const h of [a, b]) await h.call('file.remove', { path: iso });
  await startDomain(vm);
  await a.call('system.run', { file: 'sh', args: ['-c', `head -c 3145728 /dev/urandom > ${iso}`] });
  await labVirsh('lab-a', ['attach-disk', vm, iso, 'sdb', '--type', 'cdrom', '--mode', 'readonly', '--targetbus', 'sata', '--config']);
  // A CD-ROM is no hotplug device here: the domain starts again with it.
  await labVirsh('lab-a', ['destroy', vm]);
  await labVirsh('lab-a', ['start', vm]);
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);
  try {
    const r = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(r.status, 'completed', JSON.stringify(r));
    assert.ok((r.disk_bytes as number) >= 3 * 1024 * 1024, `the image's bytes count in disk_bytes: ${String(r.disk_bytes)}`);
    assert.match(await labVirsh('lab-b', ['domblklist', vm]), new RegExp(`sdb\\s+${iso}`));
    const sums = await Promise.all([a, b].map(async (h) => (await h.call('system.run', { file: 'sha256sum', args: [iso] })).stdout.split(' ')[0]));
    assert.equal(sums[1], sums[0], 'the same image on the target');
    assert.equal((await a.call('file.stat', { path: iso })).exists, true, '--delete-source keeps a read-only disk');
    assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, '--delete-source removes the writable one');
    const journal = lastJournal(vm);
    const args = journal.find((e) => e.step === 'libvirt-migrate')?.args as string[];
    assert.equal(args[args.indexOf('--migrate-disks') + 1], 'vda', 'libvirt mirrors the writable disk alone');
    const onB = await waitForCounter(b, vm, before + 5);

    // Back to lab-a, which kept the image: it holds the same bytes, so it is used as it is. First two moves
    // interrupted (Ctrl-C): during the check, where nothing is made yet; once the writable disk's image is
    // made, whose rollback removes that image but not the one it did not make.
    const interrupted = async (step: string): Promise<{ status: string; failed_phase?: string }> => {
      const held = startHeldMove(vm, ['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--json'], step);
      await held.held();
      process.kill(held.child.pid!, 'SIGINT');
      process.kill(held.child.pid!, 'SIGCONT');
      return JSON.parse((await held.done).stdout) as { status: string; failed_phase?: string };
    };
    const inCheck = await interrupted('vm');
    assert.deepEqual([inCheck.status, inCheck.failed_phase], ['aborted', 'check'], JSON.stringify(inCheck));
    assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, 'nothing made on lab-a');
    const rolledBack = await interrupted('created');
    assert.equal(rolledBack.status, 'aborted', JSON.stringify(rolledBack));
    assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, 'the image ferry made is removed');
    assert.equal((await a.call('file.sha256', { path: iso })).sha256, sums[0], "the rollback leaves lab-a's image, which ferry did not make");
    const back = await migrate(vm, 'lab-b', 'lab-a');
    assert.equal(back.status, 'completed', JSON.stringify(back));
    const disks = back.disks as Array<{ device: string; target: { created: boolean; present?: boolean } }>;
    assert.deepEqual(disks.find((d) => d.device === 'sdb')?.target, { path: iso, format: 'raw', created: false, present: true }, 'the image already on lab-a is used');
    assert.ok((back.disk_bytes as number) < 3 * 1024 * 1024, `the image did not cross again: ${String(back.disk_bytes)} bytes`);
    assert.ok(!lastJournal(vm).some((e) => e.step === 'copying'), 'nothing copied by the sync engine');
    assert.equal((await a.call('file.sha256', { path: iso })).sha256, sums[0]);
    await waitForCounter(a, vm, onB + 3);
  } finally {
    await cleanDomain(vm, 1);
    for (const h of [a, b]) await h.call('file.remove', { path: iso });
  }
});

test("libvirt: a UEFI domain's variable store moves with it: live, where ferry killed as it copies leaves recover nothing to miss, then with --delete-source over a blank store a failed virsh migrate left; cold back, where another store at its path is refused until --force, a run killed as it copies is continued, and the domain boots there", async () => {
  const vm = 'lv-uefi';
  const nvram = labNvramPath(vm);
  const sha = async (h: AgentClient): Promise<string> => (await h.call('file.sha256', { path: nvram })).sha256;
  await cleanDomain(vm, 1);
  for (const h of [a, b]) await h.call('file.remove', { path: nvram });
  await startDomain(vm, ['--uefi']);
  try {
    const template = (await a.call('file.sha256', { path: '/usr/share/OVMF/OVMF_VARS_4M.fd' })).sha256;
    const stored = await sha(a);
    assert.equal((await a.call('file.stat', { path: nvram })).mode, 0o600);
    const listed = JSON.parse((await ferry(['vm', 'list', 'lab-a', '--json'])).stdout) as Array<{ name: string; files: unknown }>;
    assert.deepEqual(listed.find((v) => v.name === vm)?.files, [{ what: 'UEFI variable store', path: nvram }], 'ferry vm list names the store');
    assert.notEqual(stored, template, 'OVMF wrote its variables at the first boot');

    // Killed as the store copies: the store was claimed first, so `ferry recover` removes it with the image.
    const killed = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json'], 'vm-file-copying');
    await killed.held();
    process.kill(killed.child.pid!, 'SIGKILL');
    await killed.done;
    const recovered = await ferry(['recover', killed.id()!, '--json']);
    assert.equal(recovered.code, 0, `${recovered.stdout} ${recovered.stderr}`);
    assert.equal(await domainState('lab-a', vm), 'running');
    assert.equal(await domainState('lab-b', vm), undefined);
    assert.equal((await b.call('file.stat', { path: nvram })).exists, false, 'the store ferry made on lab-b is removed');
    assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false);

    // A blank store at the path, as a `virsh migrate` that failed on lab-b leaves it (made from the template): replaced.
    await b.call('system.run', { file: 'cp', args: ['/usr/share/OVMF/OVMF_VARS_4M.fd', nvram] });
    const live = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(live.status, 'completed', JSON.stringify(live));
    assert.deepEqual(live.files, [{ what: 'UEFI variable store', path: nvram }]);
    assert.ok(
      lastJournal(vm).some((e) => e.step === 'log' && /is a blank UEFI variable store/.test(String(e.message))),
      'the journal says the blank store was replaced',
    );
    assert.equal(await sha(b), stored, 'the same variables on lab-b');
    assert.equal((await b.call('file.stat', { path: nvram })).mode, 0o600, "only its owner may read it, as libvirt made it on lab-a (libvirt changes a store's owner, not its mode)");
    assert.equal((await a.call('file.stat', { path: nvram })).exists, false, "--delete-source removes the source's store");
    await waitForCounter(b, vm, (await counter(b, vm)) + 3);

    // Cold back to lab-a, where another store lies at the path (another VM's, say).
    await labVirsh('lab-b', ['destroy', vm]);
    await a.call('system.run', { file: 'sh', args: ['-c', `head -c 540672 /dev/urandom > ${nvram}`] });
    const another = await sha(a);
    const refused = await ferry(['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--json']);
    const error = (JSON.parse(refused.stdout) as { error?: { code: string; message: string; hint?: string } }).error;
    assert.equal(error?.code, 'TARGET_EXISTS', refused.stdout);
    assert.match(error.message, /UEFI variable store/);
    assert.match(error.hint ?? '', /--force/);
    assert.equal(await sha(a), another, 'the file there is left as it was');
    assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, false, 'nothing made on lab-a');

    // Moved with --force, it boots on lab-a (through OVMF, with its own variables) and writes again.
    const boots = async (): Promise<number> => (await readSerial(a, vm)).split(GUEST_READY).length;
    const booted = await boots();
    // Killed as the store copies, after the disk: the domain stays on lab-b, shut off; the rerun continues into what was made.
    await ferryHeldAt(['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--json', '--force'], 'vm-file-copying', async (pid) => void process.kill(pid, 'SIGKILL'));
    assert.equal(await domainState('lab-b', vm), 'shut off', 'lab-b keeps the domain');
    assert.equal(await domainState('lab-a', vm), undefined);
    const cold = await migrate(vm, 'lab-b', 'lab-a', ['--force']);
    assert.equal(cold.status, 'completed', JSON.stringify(cold));
    const copied = lastJournal(vm)
      .filter((e) => e.step === 'copied')
      .map((e) => e.bytes_sent as number);
    assert.ok(copied.length === 1 && copied[0]! < 256 * 1024, `the disk's data did not cross again: ${JSON.stringify(copied)}`);
    assert.equal(cold.mode, 'cold');
    assert.equal(await sha(a), stored, "--force overwrote it with the domain's own");
    assert.equal(await sha(b), stored, 'the source keeps its store without --delete-source');
    await until('lv-uefi to boot on lab-a', async () => ((await boots()) > booted ? true : undefined), 120_000, 500);
  } finally {
    await cleanDomain(vm, 1);
    for (const h of [a, b]) await h.call('file.remove', { path: nvram });
  }
});

test("libvirt: an emulated TPM's state crosses a live move in libvirt's own stream, and a cold one as a file ferry copies; the source keeps its copy unless --delete-source, and the domain starts on its own TPM", async () => {
  const vm = 'lv-tpm';
  await cleanDomain(vm, 1);
  await startDomain(vm, ['--tpm']);
  const uuid = (await labVirsh('lab-a', ['domuuid', vm])).trim();
  const dir = `/var/lib/libvirt/swtpm/${uuid}`;
  const state = `${dir}/tpm2/tpm2-00.permall`;
  const sha = async (h: AgentClient): Promise<string | undefined> => ((await h.call('file.stat', { path: state })).exists ? (await h.call('file.sha256', { path: state })).sha256 : undefined);
  try {
    assert.ok(await sha(a), 'libvirt made the TPM state at the first start');
    const live = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(live.status, 'completed', JSON.stringify(live));
    assert.equal(live.files, undefined, "ferry copies no TPM state in a live move: QEMU's stream carries it");
    assert.ok(await sha(b), 'lab-b has the TPM state');
    assert.equal(await sha(a), undefined, 'libvirt removed the source its state');

    // Cold back: before, the undefine on the source removed the state, and the target made a new TPM.
    await labVirsh('lab-b', ['destroy', vm]);
    const onB = await sha(b);
    const cold = await migrate(vm, 'lab-b', 'lab-a', ['--no-start']);
    assert.equal(cold.status, 'completed', JSON.stringify(cold));
    assert.deepEqual(cold.files, [{ what: 'TPM state', path: state }]);
    assert.equal(await sha(a), onB, 'the same TPM state on lab-a');
    assert.equal(await sha(b), onB, 'lab-b keeps its copy without --delete-source');
    const boots = async (): Promise<number> => (await readSerial(a, vm)).split(GUEST_READY).length;
    const booted = await boots();
    await labVirsh('lab-a', ['start', vm]);
    await until('lv-tpm to boot on lab-a', async () => ((await boots()) > booted ? true : undefined), 120_000, 500);
    assert.match(await labVirsh('lab-a', ['dumpxml', vm]), /<backend type='emulator' version='2.0'/);

    // Cold again, with --delete-source: the source's state goes with its directory (swtpm's lock in it).
    await labVirsh('lab-a', ['destroy', vm]);
    const onA = await sha(a);
    // What lab-b kept of the first move (no --delete-source then) is out of the way.
    await b.call('file.remove', { path: diskPath(vm) });
    await b.call('system.run', { file: 'rm', args: ['-rf', dir] });
    const away = await migrate(vm, 'lab-a', 'lab-b', ['--no-start', '--delete-source']);
    assert.equal(away.status, 'completed', JSON.stringify(away));
    assert.equal(await sha(b), onA, 'the same TPM state on lab-b');
    assert.equal((await a.call('file.stat', { path: dir })).exists, false, `lab-a:${dir} is gone`);
  } finally {
    await cleanDomain(vm, 1);
    for (const h of [a, b]) await h.call('system.run', { file: 'rm', args: ['-rf', dir] });
  }
});

const POOL: TestPool = { name: 'ferry-e2e', dir: '/var/lib/libvirt/images/ferry-e2e' };

test('libvirt: a disk that is a storage pool volume moves live and offline into the same pool, which the target must have; --delete-source leaves the source pool without it; --disk-map takes it out of the pool', async () => {
  const vm = 'lv-pool';
  const volume = `${vm}.qcow2`;
  const onPool = `${POOL.dir}/${volume}`;
  const mapped = diskPath(vm);
  await cleanDomain(vm, 1);
  for (const h of [a, b]) await removePool(h, POOL);
  await definePool('lab-a', POOL);
  await labVirsh('lab-a', ['vol-create-as', POOL.name, volume, '64M', '--format', 'qcow2']);
  await startDomain(vm, ['--disk', `volume:${POOL.name}/${volume}`]);
  try {
    const missing = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal((missing.error as { code: string }).code, 'NO_POOL', JSON.stringify(missing));
    assert.match((missing.error as { message: string }).message, /Storage pool "ferry-e2e" is not defined on "lab-b"; disk vda is its volume "lv-pool\.qcow2"/);
    assert.match((missing.error as { hint: string }).hint, /virsh pool-define-as ferry-e2e dir --target \/var\/lib\/libvirt\/images\/ferry-e2e/);
    assert.equal((await b.call('file.stat', { path: onPool })).exists, false, 'nothing made on the target');

    await definePool('lab-b', POOL);
    const before = await counter(a, vm);
    const live = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(live.status, 'completed', JSON.stringify(live));
    // Still a volume of the pool on the target, and one the pool knows; gone from the source's pool.
    assert.match(await labVirsh('lab-b', ['domblklist', vm]), /vda\s+lv-pool\.qcow2/);
    assert.match(await labVirsh('lab-b', ['dumpxml', '--inactive', vm]), /<source pool='ferry-e2e' volume='lv-pool\.qcow2'\/>/);
    assert.match(await labVirsh('lab-b', ['vol-list', POOL.name]), /lv-pool\.qcow2\s+\/var\/lib\/libvirt\/images\/ferry-e2e\/lv-pool\.qcow2/);
    assert.doesNotMatch(await labVirsh('lab-a', ['vol-list', POOL.name]), /lv-pool/, "the source's pool no longer lists the deleted volume");
    const n = await waitForCounter(b, vm, before + 5);

    // Offline back into the source's pool: libvirt there must know the volume ferry made before the domain starts.
    await labVirsh('lab-b', ['destroy', vm]);
    const cold = await migrate(vm, 'lab-b', 'lab-a', ['--delete-source']);
    assert.equal(cold.status, 'completed', JSON.stringify(cold));
    assert.match(await labVirsh('lab-a', ['domblklist', vm]), /vda\s+lv-pool\.qcow2/);
    assert.match(await labVirsh('lab-a', ['vol-list', POOL.name]), /lv-pool\.qcow2/);
    assert.doesNotMatch(await labVirsh('lab-b', ['vol-list', POOL.name]), /lv-pool/);
    const m = await waitForCounter(a, vm, n + 5);

    // Out of the pool with --disk-map: a file disk on the target.
    const out = await migrate(vm, 'lab-a', 'lab-b', ['--disk-map', `${onPool}=${mapped}`]);
    assert.equal(out.status, 'completed', JSON.stringify(out));
    assert.match(await labVirsh('lab-b', ['dumpxml', '--inactive', vm]), new RegExp(`<disk type='file' device='disk'>[\\s\\S]*?<source file='${mapped}'/>`));
    const last = await waitForCounter(b, vm, m + 5);
    await labVirsh('lab-b', ['destroy', vm]);
    const check = await b.call('lab.checkRecords', { disks: [mapped], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
    assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
    assert.equal(check.corruptReportedCount, 0);
  } finally {
    await cleanDomain(vm, 1);
    for (const h of [a, b]) await removePool(h, POOL);
  }
});

test('libvirt: a disk on storage both hosts share is not copied, nor removed by --delete-source: live migration moves the RAM alone', async () => {
  const vm = 'lv-shared';
  await cleanDomain(vm);
  const shared = await newSharedImage(vm, 'qcow2');
  await startDomain(vm, ['--disk', shared]);
  const r = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.disk_bytes, 0, 'no disk bytes crossed');
  assert.ok((await a.call('file.stat', { path: shared })).exists, '--delete-source never removes a disk the target shares');
  assert.equal(await domainState('lab-b', vm), 'running');
  const n = await waitForCounter(b, vm, (await counter(a, vm)) + 10);
  await labVirsh('lab-b', ['destroy', vm]);
  const check = await b.call('lab.checkRecords', { disks: [shared], serialLogs: [labVmPaths(vm).serialLog], lastReported: n });
  assert.equal(check.missingCount, 0);
  await cleanDomain(vm);
  await a.call('file.remove', { path: shared });
});

test('libvirt: a block device both hosts see (a loop device over a shared file) is not copied: live there, shut off and offline back', async () => {
  const vm = 'lv-sblk';
  await cleanDomain(vm, 0);
  const file = await newSharedImage(vm, 'raw');
  // The lab hosts share /dev: the loop device is one device, seen from both.
  const loop = (await a.call('system.run', { file: 'losetup', args: ['--find', '--show', file], allowFailure: false })).stdout.trim();
  try {
    await startDomain(vm, ['--disk', loop]);
    const live = await migrate(vm, 'lab-a', 'lab-b', ['--delete-source']);
    assert.equal(live.status, 'completed', JSON.stringify(live));
    assert.equal(live.disk_bytes, 0, 'no disk bytes crossed');
    assert.equal(await domainState('lab-b', vm), 'running');
    const n = await waitForCounter(b, vm, (await counter(a, vm)) + 5);
    await labVirsh('lab-b', ['destroy', vm]);
    const offline = await migrate(vm, 'lab-b', 'lab-a', ['--delete-source']);
    assert.equal(offline.status, 'completed', JSON.stringify(offline));
    assert.equal(offline.mode, 'cold');
    assert.equal(offline.disk_bytes, 0, 'no disk bytes crossed');
    assert.equal((await b.call('file.stat', { path: loop })).type, 'block', '--delete-source never removes a device the target shares');
    assert.equal(await domainState('lab-a', vm), 'running');
    const m = await waitForCounter(a, vm, n + 5);
    await labVirsh('lab-a', ['destroy', vm]);
    const check = await a.call('lab.checkRecords', { disks: [loop], serialLogs: [], lastReported: m });
    assert.equal(check.missingCount, 0, JSON.stringify(check.missing));
  } finally {
    await cleanDomain(vm, 0);
    await a.call('system.run', { file: 'losetup', args: ['--detach', loop] });
    await a.call('file.remove', { path: file });
  }
});

test("libvirt: a running domain whose shared disk goes through the host's page cache is refused before anything is made; --force moves it", async () => {
  const vm = 'lv-shared-wb';
  await cleanDomain(vm);
  const shared = await newSharedImage(vm, 'qcow2');
  await startDomain(vm, ['--disk', shared, '--cache', 'writeback']);
  const refused = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json']);
  assert.notEqual(refused.code, 0);
  const report = JSON.parse(refused.stdout) as { failed_phase?: string; error?: { code: string; message: string; hint?: string } };
  assert.equal(report.error?.code, 'UNSAFE_CACHE', refused.stdout);
  assert.equal(report.failed_phase, 'check');
  assert.match(report.error?.message ?? '', /cache=writeback/);
  assert.match(report.error?.hint ?? '', /cache=none/);
  assert.equal(await domainState('lab-a', vm), 'running');
  assert.equal(await domainState('lab-b', vm), undefined);
  // Both lab hosts share one kernel, and so one page cache: --force is safe here.
  const r = await migrate(vm, 'lab-a', 'lab-b', ['--force']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.disk_bytes, 0, 'no disk bytes crossed');
  assert.equal(await domainState('lab-b', vm), 'running');
  await waitForCounter(b, vm, (await counter(a, vm)) + 5);
  await cleanDomain(vm);
  await a.call('file.remove', { path: shared });
});

test('libvirt: a domain on a libvirt network the target lacks, or on a bridge it lacks, is refused before anything is made; on a bridge both have, it moves', async () => {
  const vm = 'lv-net';
  const bridge = 'ferrybr-e2e';
  const xml = `/tmp/ferry-e2e-${process.pid}-labnet.xml`;
  await cleanDomain(vm);
  await a.call('system.run', { file: 'sh', args: ['-c', `ip link del ${bridge} 2>/dev/null; ip link add ${bridge} type bridge && ip link set ${bridge} up`] });
  await writeFile(xml, `<network><name>e2enet</name><forward mode='bridge'/><bridge name='${bridge}'/></network>`);
  try {
    await labVirsh('lab-a', ['net-define', xml]);
    await labVirsh('lab-a', ['net-start', 'e2enet']);
    await startDomain(vm);
    await labVirsh('lab-a', ['attach-interface', vm, 'network', 'e2enet', '--model', 'virtio', '--live']);
    const r = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal(r.status, 'failed');
    assert.equal((r.error as { code: string }).code, 'NO_NETWORK', JSON.stringify(r.error));
    assert.match((r.error as { hint: string }).hint, /virsh net-start e2enet/);
    assert.equal(await domainState('lab-b', vm), undefined);
    assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
    assert.equal(await domainState('lab-a', vm), 'running');

    // Attached to the bridge itself, on a target without it: lab-b then sees no device but lo in /sys/class/net.
    // (Live, libvirt shows the network's interface as the bridge it resolved to.)
    await labVirsh('lab-a', ['detach-interface', vm, 'bridge', '--live']);
    await labVirsh('lab-a', ['attach-interface', vm, 'bridge', bridge, '--model', 'virtio', '--live']);
    await changeLabNetView('lab-b', { isolated: true });
    try {
      assert.ok(!(await b.call('libvirt.bridges', undefined)).some((x) => x.name === bridge), 'lab-b does not see the bridge');
      const r = await migrate(vm, 'lab-a', 'lab-b');
      assert.equal(r.status, 'failed');
      assert.equal((r.error as { code: string }).code, 'NO_NETWORK', JSON.stringify(r.error));
      assert.match((r.error as { message: string }).message, new RegExp(`bridge "${bridge}", which does not exist on "lab-b"`));
      assert.match((r.error as { hint: string }).hint, new RegExp(`ip link add ${bridge} type bridge`));
      assert.equal(await domainState('lab-b', vm), undefined);
      assert.equal((await b.call('file.stat', { path: diskPath(vm) })).exists, false, 'no image made on the target');
      assert.equal(await domainState('lab-a', vm), 'running');
    } finally {
      await changeLabNetView('lab-b', { isolated: false });
    }
    // lab-b sees the bridge again: the refusal came from its absence, and the domain moves with its interface.
    assert.ok(
      (await b.call('libvirt.bridges', undefined)).some((x) => x.name === bridge),
      'lab-b sees the bridge again',
    );
    const moved = await migrate(vm, 'lab-a', 'lab-b');
    assert.equal(moved.status, 'completed', JSON.stringify(moved));
    assert.equal(await domainState('lab-b', vm), 'running');
  } finally {
    await cleanDomain(vm);
    await labVirsh('lab-a', ['net-destroy', 'e2enet']).catch(() => undefined);
    await labVirsh('lab-a', ['net-undefine', 'e2enet']).catch(() => undefined);
    await a.call('system.run', { file: 'ip', args: ['link', 'del', bridge] }).catch(() => undefined);
    await rm(xml, { force: true });
  }
});
