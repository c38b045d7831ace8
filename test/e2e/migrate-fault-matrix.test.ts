/**
 * The fault matrix: a live migration of the test guest (writing without
 * pause) from lab-a to lab-b, struck at every step its journal records by
 * each fault: the controller, the source's agent or the target's agent
 * killed, the ssh link to the target dropped, the target QEMU killed.
 *
 * The controller holds itself (SIGSTOP) right after writing the step
 * (FERRY_JOURNAL_HOLD), the fault strikes, and the controller goes on
 * (unless it was the one killed). Then, whoever was lost: exactly one copy
 * of the VM runs, not paused, with every record it reported intact on its
 * disk and nothing of ferry's left in its QEMU; the other host holds nothing
 * ferry made; `ferry recover` finds nothing to do or settles it; and the
 * next migration succeeds. The one exception is the target QEMU killed after
 * it took the VM over: the VM dies with its owner, which ferry must report,
 * keeping every disk.
 *
 * The guest boots once per fault; a cell that ends with the VM on lab-b
 * moves it back for the next.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { RemoteQmp } from '../../src/drivers/qemu/remote-qmp.js';
import {
  cleanVm,
  counter,
  cutSshLinks,
  diskPath,
  ferry,
  killMoveAgent,
  labVmPaths,
  lastJournal,
  migrationRecords,
  startGuest,
  startHeldMove,
  until,
  useLab,
  vmPid,
  waitForCounter,
  type HeldMove,
} from './harness.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

/** Every step a live migration's journal records, in order (log lines aside). */
const STEPS = [
  'start',
  'agents',
  'phase:check',
  'vm',
  'phase:prepare',
  'created',
  'target-argv',
  'target-started',
  'phase:mirror',
  'mirror-ready',
  'phase:memory',
  'pre-switchover',
  'continued',
  'source-completed',
  'committed',
  'target-resumed',
  'phase:finish',
  'source-stopped',
] as const;
type Step = (typeof STEPS)[number];
type Fault = 'controller' | 'source-agent' | 'target-agent' | 'target-link' | 'target-qemu';
const FAULTS: Fault[] = ['controller', 'source-agent', 'target-agent', 'target-link', 'target-qemu'];

/** Up to here the source must keep the VM; from `committed` on, the target owns it. */
const LAST_SOURCE_STEP = STEPS.indexOf('phase:memory');
const COMMIT_STEP = STEPS.indexOf('committed');

type Owner = 'lab-a' | 'lab-b' | 'died';
/** FERRY_MATRIX_STEPS=a,b: only those steps, to look into one cell again and again. */
const ONLY_STEPS = process.env.FERRY_MATRIX_STEPS?.split(',');
const matrix = new Map<Fault, Map<Step, string>>();

interface Cell {
  fault: Fault;
  step: Step;
}

/** A migration lab-a -> lab-b held at `step`. */
function startHeldMigration(vm: string, step: Step): HeldMove {
  return startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json'], step);
}

async function qmpOf(agent: AgentClient, vm: string): Promise<RemoteQmp> {
  const proc = (await agent.call('qemu.list', undefined)).find((p) => p.name === vm);
  assert.ok(proc?.qmpSocket, `${vm} runs on ${agent.host.name}`);
  return RemoteQmp.open(agent, proc.qmpSocket);
}

interface Baseline {
  parameters: Record<string, unknown>;
}

/** The VM runs (not paused) and its QEMU holds nothing of ferry's. */
async function assertCleanOwner(agent: AgentClient, vm: string, baseline: Baseline, where: string): Promise<void> {
  const qmp = await qmpOf(agent, vm);
  try {
    const status = await qmp.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'running', `${where}: the VM runs on ${agent.host.name}, not ${status.status}`);
    assert.deepEqual(await qmp.execute('query-block-jobs'), [], `${where}: no block job left`);
    const nodes = await qmp.execute<Array<{ 'node-name': string; 'dirty-bitmaps'?: unknown[] }>>('query-named-block-nodes');
    assert.deepEqual(
      nodes.filter((n) => n['node-name'].startsWith('ferry-')).map((n) => n['node-name']),
      [],
      `${where}: no ferry block node left`,
    );
    assert.deepEqual(
      nodes.flatMap((n) => n['dirty-bitmaps'] ?? []),
      [],
      `${where}: no dirty bitmap left`,
    );
    assert.deepEqual(await qmp.execute('query-block-exports'), [], `${where}: no NBD export left`);
    const caps = await qmp.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities');
    assert.deepEqual(
      caps.filter((c) => c.state).map((c) => c.capability),
      [],
      `${where}: no migration capability left set`,
    );
    const params = await qmp.execute<Record<string, unknown>>('query-migrate-parameters');
    for (const [k, v] of Object.entries(baseline.parameters)) assert.deepEqual(params[k], v, `${where}: migration parameter ${k} is back to ${String(v)}`);
  } finally {
    await qmp.close();
  }
}

async function injectFault(cell: Cell, m: HeldMove, vm: string): Promise<boolean> {
  switch (cell.fault) {
    case 'controller':
      process.kill(m.child.pid!, 'SIGKILL');
      return true;
    case 'source-agent':
    case 'target-agent':
      return killMoveAgent(m.entries(), cell.fault === 'source-agent' ? 'source' : 'target');
    case 'target-link': {
      if (!m.entries().some((e) => e.step === 'agents')) return false;
      assert.ok(cutSshLinks(m.child.pid!, 'lab-b'), 'the controller holds an ssh link to lab-b');
      return true;
    }
    case 'target-qemu': {
      const pid = await vmPid(b, vm);
      if (!pid) return false;
      await b.call('qemu.kill', { pid, signal: 'SIGKILL' });
      return true;
    }
  }
}

/**
 * Steps at which `fault` finds nothing to strike: no agent before the journal
 * names them, no target QEMU before it starts. Such a cell would be a plain
 * migration, which other tests cover; the matrix shows it as n/a.
 */
function nothingToStrike(fault: Fault, step: Step): boolean {
  const index = STEPS.indexOf(step);
  if (fault === 'controller') return false;
  if (fault === 'target-qemu') return index < STEPS.indexOf('target-started');
  return index < STEPS.indexOf('agents');
}

/** The tail of the VM's QEMU log on each host, for a failure's message. */
async function qemuLogs(vm: string): Promise<string> {
  const tails = [];
  for (const h of [a, b]) {
    const log = await h.call('file.read', { path: labVmPaths(vm).qemuLog }).catch(() => undefined);
    tails.push(`QEMU log of ${vm} on ${h.host.name}: ${log ? log.text.split('\n').slice(-20).join('\n') : '(none)'}`);
  }
  return tails.join('\n');
}

interface Row {
  vm: string;
  baseline: Baseline;
  /** The highest record the guest has reported, on either host. */
  reported: number;
}

async function bootRow(fault: Fault, n: number): Promise<Row> {
  const vm = `mx-${fault.replace(/-.*/, '')}${n}-${process.pid % 10000}`;
  await cleanHosts(vm);
  await startGuest(a, { name: vm, disks: ['32M'], extraAppend: 'ferry.rate=20' });
  const qmp = await qmpOf(a, vm);
  const params = await qmp.execute<Record<string, unknown>>('query-migrate-parameters');
  await qmp.close();
  return { vm, baseline: { parameters: { 'downtime-limit': params['downtime-limit'], 'max-bandwidth': params['max-bandwidth'] } }, reported: await counter(a, vm) };
}

async function cleanHosts(vm: string): Promise<void> {
  for (const h of [a, b]) {
    await cleanVm(h, vm, 1);
    const { qmpSocket, pidfile } = labVmPaths(vm);
    for (const path of [qmpSocket, pidfile, `/run/ferry/${vm}.incoming.pid`]) await h.call('file.remove', { path });
  }
}

/** Runs one cell and returns its outcome for the matrix. */
async function runCell(row: Row, cell: Cell): Promise<{ outcome: string; owner: Owner }> {
  const { vm } = row;
  const where = `${cell.fault} at ${cell.step}`;
  const { serialLog, qemuLog, qmpSocket } = labVmPaths(vm);
  const targetPaths = [diskPath(vm), serialLog, qemuLog, qmpSocket, `/run/ferry/${vm}.incoming.pid`];
  const existedOnB = new Set<string>();
  for (const path of targetPaths) if ((await b.call('file.stat', { path })).exists) existedOnB.add(path);
  const m = startHeldMigration(vm, cell.step);
  await m.held().catch(async (e: Error) => {
    // A QEMU that ended by itself left its last words in its log.
    throw new Error(`${e.message}\n${await qemuLogs(vm)}`);
  });
  const id = m.id()!;
  const struck = await injectFault(cell, m, vm);
  if (cell.fault !== 'controller') process.kill(m.child.pid!, 'SIGCONT');
  const result = await m.done;
  assert.ok(struck, `${where}: there was nothing to strike, which nothingToStrike should have said`);
  const report = cell.fault === 'controller' ? undefined : (JSON.parse(result.stdout) as { status: string; source_running?: boolean; error?: { code: string } });

  // Alone or not, both sides settle: no record of the migration is left on either host.
  await until(`${where}: the hosts to settle`, async () => ((await migrationRecords(a, id)).length + (await migrationRecords(b, id)).length === 0 ? true : undefined), 90_000, 250);
  const onA = await vmPid(a, vm);
  const onB = await vmPid(b, vm);
  assert.ok(!(onA && onB), `${where}: the VM must not run on both hosts`);
  const owner: Owner = onA ? 'lab-a' : onB ? 'lab-b' : 'died';
  const index = STEPS.indexOf(cell.step);
  // Without its controller, or without a target QEMU, a migration short of the pause cannot go on. A lost
  // agent may be noticed only after QEMU has finished on its own: then either end is right, one owner.
  const deterministic = cell.fault === 'controller' || cell.fault === 'target-qemu';
  if (index <= LAST_SOURCE_STEP && deterministic) assert.equal(owner, 'lab-a', `${where}: before the switch-over the source keeps the VM`);
  if (index >= COMMIT_STEP) assert.equal(owner, cell.fault === 'target-qemu' ? 'died' : 'lab-b', `${where}: after the commit point the target owns the VM`);
  if (owner === 'died') assert.equal(cell.fault, 'target-qemu', `${where}: only killing the VM's own QEMU may lose it`);

  if (report) {
    if (owner === 'lab-a') {
      assert.notEqual(report.status, 'completed', `${where}: ${result.stdout}`);
      assert.equal(report.source_running, true, `${where}: the report confirms the source runs`);
    }
    if (owner === 'lab-b') assert.equal(report.status, 'completed', `${where}: ${result.stdout}`);
    if (owner === 'died') assert.equal(report.error?.code, 'VM_DIED', `${where}: the report says the VM died: ${result.stdout}`);
  }

  if (cell.fault === 'controller') {
    const history = JSON.parse((await ferry(['history', '--json'])).stdout) as Array<{ id: string; status: string; settleWith?: string }>;
    const item = history.find((h) => h.id === id);
    assert.equal(item?.status, 'interrupted', `${where}: history marks the migration interrupted`);
    assert.equal(item?.settleWith, `ferry recover ${id}`, `${where}: history names the command that settles it`);
  }
  const recover = await ferry(['recover', id, '--json']);
  assert.equal(recover.code, 0, `${where}: ferry recover: ${recover.stdout} ${recover.stderr}`);
  const recovered = JSON.parse(recover.stdout) as Array<{ status: string }>;
  const recovery = recovered[0]?.status ?? 'closed';
  assert.ok(['nothing-to-do', 'closed'].includes(recovery), `${where}: after settling, recover has nothing left to do: ${recover.stdout}`);
  assert.equal(await vmPid(a, vm), onA, `${where}: recover changed nothing on lab-a`);
  assert.equal(await vmPid(b, vm), onB, `${where}: recover changed nothing on lab-b`);

  if (owner === 'lab-a') {
    for (const path of targetPaths.filter((p) => !existedOnB.has(p))) {
      assert.equal((await b.call('file.stat', { path })).exists, false, `${where}: lab-b:${path}, made by the migration, was removed`);
    }
  } else {
    assert.ok((await a.call('file.stat', { path: diskPath(vm) })).exists, `${where}: the source disk is kept`);
  }
  if (owner === 'died') {
    assert.ok((await b.call('file.stat', { path: diskPath(vm) })).exists, `${where}: the target's disk, which holds the VM's last writes, is kept`);
    return { owner, outcome: 'VM died with its owner (reported); disks kept on both' };
  }

  const agent = owner === 'lab-a' ? a : b;
  await assertCleanOwner(agent, vm, row.baseline, where);
  const before = await counter(agent, vm);
  row.reported = Math.max(row.reported, before);
  await waitForCounter(agent, vm, before + 1, 90_000);
  row.reported = Math.max(row.reported, await counter(agent, vm));
  const check = await agent.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: [], lastReported: row.reported, forceShare: true });
  assert.equal(check.missingCount, 0, `${where}: records missing on ${owner}: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0, `${where}: records corrupt on ${owner}: ${JSON.stringify(check.corruptReported)}`);

  if (owner === 'lab-b') {
    // The next migration succeeds: back to lab-a, once the kept source disk is out of the way.
    await a.call('file.remove', { path: diskPath(vm) });
    const back = await ferry(['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--delete-source', '--json']);
    assert.equal(back.code, 0, `${where}: the next migration succeeds: ${back.stdout} ${back.stderr}`);
    await waitForCounter(a, vm, row.reported + 1, 90_000);
  }
  const side = owner === 'lab-a' ? 'source keeps it' : 'target owns it';
  return { owner, outcome: `${side}; recover: ${recovery}` };
}

for (const fault of FAULTS) {
  test(`fault matrix: ${fault}`, async () => {
    const row = matrix.get(fault) ?? new Map<Step, string>();
    matrix.set(fault, row);
    let boots = 0;
    let current = await bootRow(fault, boots++);
    try {
      for (const step of STEPS) {
        if (ONLY_STEPS && !ONLY_STEPS.includes(step)) continue;
        if (nothingToStrike(fault, step)) {
          row.set(step, 'n/a (nothing to strike yet)');
          continue;
        }
        const { outcome, owner } = await runCell(current, { fault, step }).catch(async (e: Error) => {
          // What CI's log alone must show: how the move went, step by step, and what each QEMU said.
          const journal = lastJournal(current.vm).filter((entry) => entry.step !== 'progress');
          throw new Error(`${e.message}\njournal of the move:\n${journal.map((j) => JSON.stringify(j)).join('\n')}\n${await qemuLogs(current.vm)}`, { cause: e });
        });
        row.set(step, outcome);
        if (owner === 'died') {
          await cleanHosts(current.vm);
          current = await bootRow(fault, boots++);
        }
      }
      // The guest that went through the whole row: every record it reported is on its disk.
      const last = await counter(a, current.vm);
      await a.call('qemu.kill', { pid: (await vmPid(a, current.vm))!, signal: 'SIGKILL' });
      const check = await a.call('lab.checkRecords', { disks: [diskPath(current.vm)], serialLogs: [], lastReported: Math.max(last, current.reported) });
      assert.equal(check.missingCount, 0, `records missing: ${check.missing.join(',')}`);
      assert.ok(check.ok, JSON.stringify(check.problems));
    } finally {
      await cleanHosts(current.vm);
      printMatrix();
    }
  });
}

function printMatrix(): void {
  const lines = ['fault matrix (step x fault -> outcome):'];
  for (const [fault, row] of matrix) for (const [step, outcome] of row) lines.push(`  ${step.padEnd(17)} ${fault.padEnd(13)} ${outcome}`);
  process.stdout.write(lines.join('\n') + '\n');
}
