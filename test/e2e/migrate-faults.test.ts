/**
 * Faults in the middle of a live migration: the target QEMU dies during the
 * disk mirror, the RAM migration's TCP connection is torn down, the user
 * presses Ctrl-C. Each time the VM must go on running on the source with its
 * disks intact, and nothing ferry made on the target may remain.
 *
 * The test follows the migration through its journal (one JSON line per step,
 * written synchronously): with --json on a pipe the CLI's live view is quiet.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, cleanVm, counter, diskPath, ferry, killVm, labVmPaths, startGuest, stateDir, vmPid, waitForCounter, type CliResult, useLab } from './harness.js';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import type { JournalEntry } from '../../src/migrate/journal.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

interface Report {
  status: string;
  failed_phase?: string;
  source_running?: boolean;
  error?: { code: string; message: string; hint?: string };
  id: string;
}

interface LiveMigration {
  child: ChildProcess;
  done: Promise<CliResult>;
  /** Waits for a journal line matching `pred` and returns it. */
  waitFor(pred: (e: JournalEntry) => boolean, what: string, timeoutMs?: number): Promise<JournalEntry>;
}

/** Starts `ferry migrate ... --json` and lets the test watch its journal while it runs. */
function startMigration(vm: string, extra: string[]): LiveMigration {
  const child = spawn(process.execPath, [CLI, 'migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...extra], {
    env: { ...process.env, FERRY_STATE_DIR: stateDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  let exited = false;
  void done.then(() => (exited = true));
  const dir = join(stateDir, 'journal');
  const entries = (): JournalEntry[] => {
    if (!existsSync(dir)) return [];
    const file = readdirSync(dir).find((f) => f.endsWith(`-migrate-${vm}-${child.pid}.jsonl`));
    if (!file) return [];
    return readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JournalEntry);
  };
  const waitFor = async (pred: (e: JournalEntry) => boolean, what: string, timeoutMs = 120_000): Promise<JournalEntry> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = entries().find(pred);
      if (hit) return hit;
      if (exited || Date.now() > deadline) {
        throw new Error(`migration of ${vm} never reached "${what}": ${stdout} ${stderr} ${JSON.stringify(entries().slice(-5))}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, done, waitFor };
}

const logged = (re: RegExp) => (e: JournalEntry) => e.step === 'log' && re.test(String(e.message));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Removes the VM, its disk and what a killed QEMU leaves in /run/ferry, on both hosts. */
async function removeVm(vm: string): Promise<void> {
  for (const h of [a, b]) {
    await cleanVm(h, vm, 1);
    const { qmpSocket, pidfile } = labVmPaths(vm);
    for (const path of [qmpSocket, pidfile, `/run/ferry/${vm}.incoming.pid`]) await h.call('file.remove', { path });
  }
}

/**
 * What every fault must leave: the report says failed/aborted with the source
 * verified running, history agrees, the guest still writes on lab-a, and
 * lab-b holds neither a QEMU nor any file ferry's target QEMU created.
 */
async function assertRolledBack(vm: string, r: CliResult, want: { status: 'failed' | 'aborted'; phase: string; code?: string }): Promise<Report> {
  assert.notEqual(r.code, 0, 'ferry migrate exits non-zero');
  const report = JSON.parse(r.stdout) as Report;
  assert.equal(report.status, want.status, `report: ${r.stdout}`);
  assert.equal(report.failed_phase, want.phase, `report: ${r.stdout}`);
  if (want.code) assert.equal(report.error?.code, want.code, `report: ${r.stdout}`);
  assert.ok(report.error?.message, 'the report says what went wrong');
  assert.equal(report.source_running, true, 'the report confirms the VM runs on the source');

  const history = JSON.parse((await ferry(['history', '--json'])).stdout) as Array<{ id: string; vm: string; status: string }>;
  const item = history.find((h) => h.id === report.id);
  assert.ok(item, `history lists migration ${report.id}`);
  assert.equal(item.vm, vm);
  assert.equal(item.status, want.status);

  assert.ok(await vmPid(a, vm), 'the source QEMU still runs');
  const n = await counter(a, vm);
  await waitForCounter(a, vm, n + 3, 30_000);

  assert.equal(await vmPid(b, vm), undefined, 'no QEMU for the VM on lab-b');
  const { serialLog, qemuLog, qmpSocket } = labVmPaths(vm);
  for (const path of [diskPath(vm), serialLog, qemuLog, qmpSocket, `/run/ferry/${vm}.incoming.pid`]) {
    assert.equal((await b.call('file.stat', { path })).exists, false, `lab-b:${path} was removed`);
  }
  return report;
}

/** A guest on lab-a whose 64 MiB disk has every cluster allocated (zeros written, not holes): at 4 MiB/s its mirror lasts about 16 s. */
async function startGuestOnFullDisk(vm: string): Promise<void> {
  await a.call('image.create', { path: diskPath(vm), format: 'qcow2', sizeBytes: 64 * 1024 * 1024 });
  const fill = await a.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0 0 64M', diskPath(vm)] });
  assert.equal(fill.exitCode, 0, fill.stderr);
  await startGuest(a, { name: vm, disks: [diskPath(vm)], extraAppend: 'ferry.rate=20' });
}

/** Kills the guest on lab-a and checks every record it reported is intact on its disk. */
async function assertRecordsIntact(vm: string): Promise<void> {
  const last = await counter(a, vm);
  await killVm(a, vm);
  const check = await a.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
  assert.ok(check.lastReportedSeq >= last);
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corrupt.length, 0, JSON.stringify(check.corrupt.slice(0, 5)));
  assert.ok(check.ok, JSON.stringify(check.problems));
}

test('faults during the disk mirror leave the VM on the source', async (t) => {
  // A disk whose every cluster holds data (zeros written, not holes) so that
  // at 4 MiB/s the mirror lasts about 16 s: time enough to strike.
  const vm = `flt-mir-${process.pid}`;
  await removeVm(vm);
  await startGuestOnFullDisk(vm);
  try {
    await t.test('the target QEMU is killed', async () => {
      const m = startMigration(vm, ['--bandwidth', '4']);
      await m.waitFor(logged(/^mirroring /), 'mirror started');
      await sleep(1500);
      const pid = await vmPid(b, vm);
      assert.ok(pid, 'the target QEMU runs during the mirror');
      assert.ok((await b.call('file.stat', { path: diskPath(vm) })).exists, 'the target image exists during the mirror');
      await b.call('qemu.kill', { pid, signal: 'SIGKILL' });
      const r = await m.done;
      await assertRolledBack(vm, r, { status: 'failed', phase: 'mirror', code: 'MIGRATION_FAILED' });
    });

    await t.test('Ctrl-C', async () => {
      const m = startMigration(vm, ['--bandwidth', '4']);
      await m.waitFor(logged(/^mirroring /), 'mirror started');
      await sleep(1500);
      assert.ok(await vmPid(b, vm), 'the target QEMU runs during the mirror');
      m.child.kill('SIGINT');
      const r = await m.done;
      await assertRolledBack(vm, r, { status: 'aborted', phase: 'mirror', code: 'ABORTED' });
    });

    await assertRecordsIntact(vm);
  } finally {
    await removeVm(vm);
  }
});

test('faults during the RAM migration leave the VM on the source', async (t) => {
  // At 2 MiB/s the guest's RAM takes many seconds to cross. The cap holds for
  // the mirror too, zeros included: a small disk keeps that part short, and a
  // slow writer keeps the guest from filling it (it stops writing when full).
  const vm = `flt-ram-${process.pid}`;
  await removeVm(vm);
  await startGuest(a, { name: vm, disks: ['16M'], extraAppend: 'ferry.rate=10' });
  try {
    await t.test('the migration connection is dropped', async () => {
      const m = startMigration(vm, ['--bandwidth', '2']);
      const started = await m.waitFor(logged(/^migrating RAM to /), 'RAM migration started');
      const port = /:(\d+)$/.exec(String(started.message))![1]!;
      await sleep(1500);
      assert.ok(await vmPid(b, vm), 'the target QEMU runs during the RAM migration');
      // Tear down both ends of the RAM stream, as a broken link would; the NBD
      // connections of the mirrors stay. (The lab hosts share one network
      // namespace, so the source host sees both sockets.)
      const target = b.host.address;
      const killed = await a.call('system.run', {
        file: 'ss',
        args: ['-K', '-t', '-n', `( dst ${target} and dport = :${port} ) or ( src ${target} and sport = :${port} )`],
      });
      assert.ok(killed.stdout.includes(`${target}:${port}`), `ss -K killed the migration socket: ${killed.stdout} ${killed.stderr}`);
      const r = await m.done;
      const report = await assertRolledBack(vm, r, { status: 'failed', phase: 'memory', code: 'MIGRATION_FAILED' });
      assert.match(report.error!.message, /RAM migration failed/, 'the report names the broken RAM stream as the cause');
    });

    await t.test('Ctrl-C', async () => {
      const m = startMigration(vm, ['--bandwidth', '2']);
      await m.waitFor(logged(/^migrating RAM to /), 'RAM migration started');
      await sleep(1500);
      assert.ok(await vmPid(b, vm), 'the target QEMU runs during the RAM migration');
      m.child.kill('SIGINT');
      const r = await m.done;
      await assertRolledBack(vm, r, { status: 'aborted', phase: 'memory', code: 'ABORTED' });
    });

    await assertRecordsIntact(vm);
  } finally {
    await removeVm(vm);
  }
});

test('the source QEMU killed during the mirror: the VM is reported dead and the target is cleaned', async () => {
  const vm = `flt-src-${process.pid}`;
  await removeVm(vm);
  await startGuestOnFullDisk(vm);
  try {
    const m = startMigration(vm, ['--bandwidth', '4']);
    await m.waitFor(logged(/^mirroring /), 'mirror started');
    await sleep(1000);
    await killVm(a, vm);
    const r = await m.done;
    assert.notEqual(r.code, 0);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.status, 'failed', r.stdout);
    assert.equal(report.error?.code, 'VM_DIED', `the report names the VM's death: ${r.stdout}`);
    assert.match(report.error!.message, /died on "lab-a"/);
    assert.ok(report.error!.hint?.includes(`lab-a:${labVmPaths(vm).qemuLog}`), `the hint names QEMU's log, where a QEMU that ended by itself says why: ${r.stdout}`);
    assert.equal(report.source_running, false);
    assert.equal(await vmPid(b, vm), undefined, 'no QEMU for the VM on lab-b');
    const { serialLog, qemuLog, qmpSocket } = labVmPaths(vm);
    for (const path of [diskPath(vm), serialLog, qemuLog, qmpSocket, `/run/ferry/${vm}.incoming.pid`]) {
      assert.equal((await b.call('file.stat', { path })).exists, false, `lab-b:${path} was removed`);
    }
    assert.ok((await a.call('file.stat', { path: diskPath(vm) })).exists, 'the source disk is untouched');
    for (const h of [a, b])
      assert.deepEqual(
        (await h.call('migration.records', undefined)).filter((x) => x.id === report.id),
        [],
        `no record left on ${h.host.name}`,
      );
  } finally {
    await removeVm(vm);
  }
});
