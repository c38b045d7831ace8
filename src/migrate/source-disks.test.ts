import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DiskPlan } from '../drivers/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import type { MigrationSettings } from './settings.js';
import { keepOrDeleteSourceDisks } from './source-disks.js';

/** A source host with an image file, an LV and a plain block device; its agent records what it is asked to remove. */
function sourceHost(removed: string[]): AgentClient {
  const types: Record<string, string> = { '/img/vm.qcow2': 'file', '/dev/vg0/vm-disk1': 'block', '/dev/sdb': 'block', '/nfs/shared.qcow2': 'file' };
  const calls: Record<string, (p: Record<string, string>) => unknown> = {
    'file.stat': (p) => ({ exists: p.path! in types, type: types[p.path!] }),
    'file.remove': (p) => void removed.push(`file ${p.path}`),
    // LVM knows the LV, not the partition that merely is a block device.
    'volume.lv': (p) => (p.path === '/dev/vg0/vm-disk1' ? { vg: 'vg0', lv: 'vm-disk1', sizeBytes: 1 } : null),
    'volume.removeLv': (p) => void removed.push(`lv ${p.vg}/${p.lv}`),
  };
  return { host: { name: 'a' }, call: async (method: string, params: Record<string, string>) => calls[method]!(params) } as unknown as AgentClient;
}

const plan = (path: string, shared = false): DiskPlan => ({ disk: { path } as DiskPlan['disk'], index: 0, targetPath: path, targetFormat: 'raw', create: true, sync: 'full', shared });
const plans = [plan('/img/vm.qcow2'), plan('/dev/vg0/vm-disk1'), plan('/dev/sdb'), plan('/nfs/shared.qcow2', true)];
const journal = { id: 'm1', record: (): void => undefined };

test('--delete-source removes the image file and the logical volume, keeps a block device that is no LV and a disk the target shares', async () => {
  const removed: string[] = [];
  const logs: string[] = [];
  await keepOrDeleteSourceDisks(sourceHost(removed), plans, { deleteSource: true } as MigrationSettings, (m) => logs.push(m), journal);
  assert.deepEqual(removed, ['file /img/vm.qcow2', 'lv vg0/vm-disk1']);
  assert.ok(
    logs.some((l) => l.includes('/dev/sdb kept')),
    logs.join('\n'),
  );
});

test('without --delete-source nothing is removed, and the log says how to', async () => {
  const removed: string[] = [];
  const logs: string[] = [];
  await keepOrDeleteSourceDisks(sourceHost(removed), plans, { deleteSource: false } as MigrationSettings, (m) => logs.push(m), journal);
  assert.deepEqual(removed, []);
  assert.match(logs.join('\n'), /--delete-source/);
});

test('--delete-source keeps a read-only disk (an ISO other VMs may use), says so, and tells the driver which disks went', async () => {
  const removed: string[] = [];
  const logs: string[] = [];
  const told: string[][] = [];
  const iso: DiskPlan = { ...plan('/img/installer.iso'), disk: { path: '/img/installer.iso', readOnly: true } as DiskPlan['disk'] };
  const steps = { sourceDisksDeleted: async (deleted: readonly DiskPlan[]) => void told.push(deleted.map((p) => p.disk.path)) };
  await keepOrDeleteSourceDisks(sourceHost(removed), [plan('/img/vm.qcow2'), iso, plan('/nfs/shared.qcow2', true)], { deleteSource: true } as MigrationSettings, (m) => logs.push(m), journal, steps);
  assert.deepEqual(removed, ['file /img/vm.qcow2']);
  assert.match(logs.join('\n'), /read-only disk a:\/img\/installer\.iso kept/);
  assert.deepEqual(told, [['/img/vm.qcow2']]);
});
