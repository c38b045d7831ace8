/**
 * Cold moves of plain QEMU VMs: powered off (its power cut after a time-out,
 * the test guest ignoring ACPI), disks copied by the sync engine, the same
 * command line booted on the target.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { waitForGuestReady } from '../../src/lab/vm.js';
import { CLI } from './cli.js';
import { GUEST_APPEND } from '../../src/lab/guest-image.js';
import {
  cleanVm,
  counter,
  diskPath,
  ferry,
  killVm,
  labVmPaths,
  moveWithAgentKilledAt,
  moveWithLinkCutAt,
  processState,
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

async function migrate(vm: string, extra: string[]): Promise<Record<string, unknown>> {
  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', ...extra]);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

test('cold: a running QEMU VM is powered off, copied and booted on the target, without losing a record', async () => {
  const vm = 'cold-q';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['48M'] });
  await waitForCounter(a, vm, (await counter(a, vm)) + 5);

  const refused = await migrate(vm, ['--mode', 'cold']);
  assert.equal((refused.error as { code: string }).code, 'VM_RUNNING');
  assert.match((refused.error as { hint: string }).hint, /--shutdown/);
  assert.ok(await vmPid(a, vm), 'still running on the source');

  const r = await migrate(vm, ['--mode', 'cold', '--shutdown', '--shutdown-timeout', '1', '--force-off']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(r.mode, 'cold');
  assert.equal(r.driver, 'qemu');
  const history = JSON.parse((await ferry(['history', '--json'])).stdout) as Array<{ id: string; kind: string }>;
  assert.equal(history.find((h) => h.id === r.id)?.kind, 'cold', 'history names the move cold');
  assert.ok((r.disk_bytes as number) > 0 && (r.disk_bytes as number) < 48 * 1024 * 1024, `only the written data crossed: ${String(r.disk_bytes)}`);
  const reported = await counter(a, vm);
  assert.equal(await vmPid(a, vm), undefined, 'powered off on the source');
  assert.ok(await vmPid(b, vm), 'running on the target');
  await waitForGuestReady(b, vm);
  await waitForCounter(b, vm, 5);

  await killVm(b, vm);
  // The guest numbers its records from 1 again after a boot: every number it reported before is on the disk, old or rewritten.
  const check = await b.call('lab.checkRecords', { disks: [diskPath(vm)], serialLogs: [], lastReported: reported });
  assert.equal(check.missingCount, 0, `missing records: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0);
  assert.equal((await a.call('file.stat', { path: diskPath(vm) })).exists, true, 'the source disk is kept');
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test("cold: the target's QEMU killed right after its start: the move is done (the target owns the VM) and says the VM does not run there; the source does not start it again, and both disks are kept", async () => {
  const vm = 'cold-dies';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['32M'] });
  const m = startHeldMove(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--mode', 'cold', '--shutdown', '--shutdown-timeout', '1', '--force-off'], 'target-started');
  await m.held();
  const pid = await vmPid(b, vm);
  assert.ok(pid, 'the VM was started on the target');
  await b.call('qemu.kill', { pid, signal: 'SIGKILL' });
  await until('the target QEMU to end', async () => ((await vmPid(b, vm)) ? undefined : true), 10_000, 50);
  process.kill(m.child.pid!, 'SIGCONT');
  const result = await m.done;
  const r = JSON.parse(result.stdout) as { status: string; warnings?: string[] };
  assert.equal(r.status, 'completed', result.stdout);
  assert.ok(
    r.warnings?.some((w) => w.includes(`VM "${vm}" is gone (its QEMU ended) on "lab-b" since its start, not running`)),
    `the report warns that the VM does not run: ${result.stdout}`,
  );
  assert.equal(await vmPid(a, vm), undefined, 'the source does not start its older copy again');
  for (const h of [a, b]) assert.ok((await h.call('file.stat', { path: diskPath(vm) })).exists, `the disk is kept on ${h.host.name}`);
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test("cold: ferry killed while it copies: the source's agent runs the VM again by itself, ferry recover has nothing left to undo, and the same command then finishes the move", async () => {
  const vm = 'cold-kill';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['32M', '32M'] });
  const child = spawn(process.execPath, [CLI, 'migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--mode', 'cold', '--shutdown', '--shutdown-timeout', '1', '--force-off'], {
    env: { ...process.env, FERRY_STATE_DIR: stateDir, FERRY_JOURNAL_HOLD: 'copied' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const ended = new Promise<void>((r) => child.on('close', () => r()));
  await until('the controller to hold while it copies', () => (processState(child.pid!) === 'T' ? true : undefined));
  const poweredOff = await vmPid(a, vm);
  process.kill(child.pid!, 'SIGKILL');
  await ended;
  assert.equal(poweredOff, undefined, 'powered off for the move');

  // The source's agent, alone once its controller is gone, starts the VM again from its command line.
  await until('the source agent to run the VM again', async () => ((await vmPid(a, vm)) ? true : undefined), 60_000, 200);
  const n = await counter(a, vm);
  await waitForCounter(a, vm, n + 1);
  const r = await ferry(['recover', vm, '--json']);
  const [recovery] = JSON.parse(r.stdout) as Array<{ status: string; runs_on: string[] }>;
  assert.ok(['nothing-to-do', 'closed'].includes(recovery!.status), r.stdout);
  assert.deepEqual(recovery!.runs_on, ['lab-a']);
  assert.equal(await vmPid(b, vm), undefined, 'nothing runs on the target');

  const again = await migrate(vm, ['--mode', 'cold', '--shutdown', '--shutdown-timeout', '1', '--force-off']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.ok(await vmPid(b, vm));
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test("cold: the source's agent killed once the power-off is asked for: ferry takes its hold over through a new agent and runs the VM again there; the same command then finishes the move", async () => {
  const vm = 'cold-agent';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  await startGuest(a, { name: vm, disks: ['32M'], append: `${GUEST_APPEND} ferry.acpi=poweroff` });
  const before = await vmPid(a, vm);
  const { report, move: held } = await moveWithAgentKilledAt(vm, ['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--json', '--mode', 'cold', '--shutdown'], 'source-stopping', 'source');
  assert.equal(report.status, 'failed', JSON.stringify(report));
  assert.equal(report.failed_phase, 'stop');
  const pid = await vmPid(a, vm);
  assert.ok(pid && pid !== before, `the guest powered off and was started again on lab-a: ${JSON.stringify(report)}`);
  assert.equal(held.entries().find((e) => e.step === 'source-started')?.by, 'taken-over', 'by the new agent, from the dead one');
  // Booted again (its ACPI handling up) before the next power-off is asked for.
  await until('the guest to boot again', async () => {
    const text = (await a.call('file.read', { path: labVmPaths(vm).serialLog })).text;
    return text.lastIndexOf('FERRY-GUEST-READY') > text.lastIndexOf('FERRY-GUEST-POWEROFF') ? true : undefined;
  });
  assert.equal(await vmPid(b, vm), undefined, 'nothing runs on the target');
  // The move ended, settled: nothing is left for recover.
  const r = await ferry(['recover', held.id()!, '--json']);
  assert.deepEqual(JSON.parse(r.stdout), [], r.stdout);

  const again = await migrate(vm, ['--mode', 'cold', '--shutdown']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.ok(await vmPid(b, vm));
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});

test("cold: the link to the source cut once the power-off is asked for: the source's agent, alive, starts the VM again by itself, and ferry's new agent waits for it rather than start it a second time", async () => {
  const vm = 'cold-link';
  await cleanVm(a, vm);
  await cleanVm(b, vm);
  // lab-b is the host behind ssh: the link to its agent is the one to cut.
  await startGuest(b, { name: vm, disks: ['32M'], append: `${GUEST_APPEND} ferry.acpi=poweroff` });
  const before = await vmPid(b, vm);
  const { report, move } = await moveWithLinkCutAt(vm, ['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--json', '--mode', 'cold', '--shutdown'], 'source-stopping', 'lab-b');
  assert.equal(report.status, 'failed', JSON.stringify(report));
  assert.equal(report.failed_phase, 'stop');
  const pid = await vmPid(b, vm);
  assert.ok(pid && pid !== before, `the guest powered off and was started again on lab-b: ${JSON.stringify(report)}`);
  // By the agent that held it, which outlived its link: the new agent found it acting ("holder"), or done already ("none": the hold
  // is gone once acted on). Never started a second time by the new agent ("taken-over") or by the controller.
  assert.ok(['holder', 'none'].includes(String(move.entries().find((e) => e.step === 'source-started')?.by)), JSON.stringify(move.entries().find((e) => e.step === 'source-started')));
  const qemus = (await b.call('qemu.list', undefined)).filter((q) => q.name === vm);
  assert.equal(qemus.length, 1, `one QEMU runs the VM on lab-b: ${JSON.stringify(qemus)}`);
  assert.equal(await vmPid(a, vm), undefined, 'nothing runs on the target');
  const r = await ferry(['recover', move.id()!, '--json']);
  assert.deepEqual(JSON.parse(r.stdout), [], r.stdout);
  await cleanVm(a, vm);
  await cleanVm(b, vm);
});
