import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { DiskPlan, VmDisk, VmInfo } from '../drivers/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { planDisks, type PlanOptions } from './plan.js';

/** A host's agent over its own in-memory files (path -> content); no LVM, plenty of space. */
function fakeHost(name: string, files: Map<string, string>): AgentClient {
  const calls: Record<string, (p: { path: string; text?: string }) => unknown> = {
    'file.stat': (p) => (files.has(p.path) ? { exists: true, type: 'file', size: files.get(p.path)!.length } : { exists: false }),
    'file.sha256': (p) => ({ sha256: createHash('sha256').update(files.get(p.path)!).digest('hex') }),
    'file.write': (p) => void files.set(p.path, p.text!),
    'file.read': (p) => {
      if (!files.has(p.path)) throw new Error('ENOENT');
      return { text: files.get(p.path) };
    },
    'file.remove': (p) => void files.delete(p.path),
    'file.free': (p) => ({ dir: p.path, freeBytes: 2 ** 40 }),
    'volume.lv': () => null,
    'image.chain': (p) => [{ filename: p.path, format: 'raw', virtualSize: files.get(p.path)!.length }],
  };
  return { host: { name }, call: async (method: string, params: { path: string }) => calls[method]!(params) } as unknown as AgentClient;
}

const cache = { writeback: true, direct: true, noFlush: false };
const disk = (device: string, path: string, readOnly: boolean): VmDisk => ({ device, path, format: 'raw', virtualSize: 4, backingChain: [], cache, readOnly });
const vm: VmInfo = {
  name: 'web1',
  driver: 'libvirt',
  pid: 1,
  state: 'running',
  memoryBytes: 2 ** 28,
  disks: [disk('vda', '/img/web1.raw', false), disk('sdb', '/iso/debian.iso', true)],
  hypervisorVersion: '7.2.0',
  auxFiles: [],
};

function plan(targetFiles: Map<string, string>, options: Partial<PlanOptions>): Promise<DiskPlan[]> {
  const source = fakeHost('a', new Map([...vm.disks.map((d): [string, string] => [d.path, `bytes of ${d.device}`])]));
  return planDisks(vm, source, fakeHost('b', targetFiles), { diskMap: new Map(), log: () => undefined, running: true, ...options });
}

test('a read-only image the target already holds, the same bytes, is used as it is: neither made nor copied', async () => {
  const logs: string[] = [];
  const plans = await plan(new Map([['/iso/debian.iso', 'bytes of sdb']]), { reuseIdentical: true, log: (m) => logs.push(m) });
  const iso = plans.find((p) => p.disk.device === 'sdb')!;
  assert.equal(iso.present, true);
  assert.equal(iso.create, false);
  assert.equal(plans.find((p) => p.disk.device === 'vda')!.create, true, 'the writable disk is made as ever');
  assert.ok(
    logs.some((l) => /b:\/iso\/debian\.iso holds the same bytes as read-only disk \/iso\/debian\.iso: used as it is, not copied/.test(l)),
    logs.join('\n'),
  );
});

test('a read-only image on the target with other bytes is refused, and left as it was', async () => {
  const target = new Map([['/iso/debian.iso', 'another release']]);
  await assert.rejects(
    plan(target, { reuseIdentical: true }),
    (e: unknown) =>
      e instanceof FerryError && e.code === 'TARGET_EXISTS' && /already exists on "b", and holds another disk than \/iso\/debian\.iso on "a"/.test(e.message) && /--disk-map/.test(e.hint ?? ''),
  );
  assert.equal(target.get('/iso/debian.iso'), 'another release');
});

test('where the hypervisor mirrors read-only disks itself, or for a writable disk, an image already there is refused even when identical', async () => {
  await assert.rejects(plan(new Map([['/iso/debian.iso', 'bytes of sdb']]), {}), (e: unknown) => e instanceof FerryError && e.code === 'TARGET_EXISTS' && !/another disk/.test(e.message));
  await assert.rejects(
    plan(new Map([['/img/web1.raw', 'bytes of vda']]), { reuseIdentical: true }),
    (e: unknown) => e instanceof FerryError && e.code === 'TARGET_EXISTS' && /"\/img\/web1\.raw"/.test(e.message),
  );
});

test('a network disk is neither looked up nor copied: both hosts reach it; --disk-map cannot move it; a cached one of a running VM is refused', async () => {
  const nbd: VmDisk = { ...disk('vdb', 'nbd://10.0.0.5:10809/data', false), kind: 'network' };
  const withNbd: VmInfo = { ...vm, disks: [vm.disks[0]!, nbd] };
  const source = fakeHost('a', new Map([['/img/web1.raw', 'bytes']]));
  const logs: string[] = [];
  const plans = await planDisks(withNbd, source, fakeHost('b', new Map()), { diskMap: new Map(), log: (m) => logs.push(m), running: true });
  assert.deepEqual(
    plans.map((p) => [p.disk.device, p.shared ?? false, p.create, p.targetPath]),
    [
      ['vda', false, true, '/img/web1.raw'],
      ['vdb', true, false, 'nbd://10.0.0.5:10809/data'],
    ],
  );
  assert.ok(logs.includes('vdb is a network disk (nbd://10.0.0.5:10809/data): both hosts reach it, it is not copied'), logs.join('\n'));
  await assert.rejects(
    planDisks(withNbd, source, fakeHost('b', new Map()), { diskMap: new Map([['nbd://10.0.0.5:10809/data', '/img/data.raw']]), log: () => undefined }),
    (e: unknown) => e instanceof FerryError && e.code === 'USAGE' && /network disk/.test(e.message),
  );
  const cached: VmInfo = { ...vm, disks: [{ ...nbd, cache: { writeback: true, direct: false, noFlush: false } }] };
  await assert.rejects(
    planDisks(cached, source, fakeHost('b', new Map()), { diskMap: new Map(), log: () => undefined, running: true }),
    (e: unknown) => e instanceof FerryError && e.code === 'UNSAFE_CACHE' && /reached over the network by "a" and "b" alike/.test(e.message),
  );
});
