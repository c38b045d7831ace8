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
import { counter, diskPath, ferry, ferryHeldAt, labVmPaths, useLab, waitForCounter } from './harness.js';
import { cleanDomain, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

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

test('libvirt warm: a running domain moves with passes and a short pause, writes on, and loses no record', async (t) => {
  const vm = 'lvw-ab';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M']);
  const before = await counter(a, vm);
  const r = await migrate(vm, ['--mode', 'warm']);
  assert.equal(r.status, 'completed', JSON.stringify(r));
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

test('libvirt warm: a cut-over the target refuses resumes the domain on a, keeps the pre-copy on b, and a rerun completes', async () => {
  const vm = 'lvw-fail';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '48M']);
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
  assert.equal(await domainState('lab-b', vm), 'shut off', "the other domain on b is not ferry's to remove");
  await b.call('libvirt.undefine', { domain: vm });
  const before = await waitForCounter(a, vm, (await counter(a, vm)) + 3);

  const again = await migrate(vm, ['--mode', 'warm']);
  assert.equal(again.status, 'completed', JSON.stringify(again));
  assert.equal((again.passes as Pass[])[0]!.kind, 'changes', 'the rerun continues from the pre-copy');
  await assertRecordsIntact(vm, before);
  await cleanDomain([a, b], vm, 1);
});
