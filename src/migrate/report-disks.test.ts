import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DiskPlan, VmDisk } from '../drivers/driver.js';
import { reportDisks } from './report-disks.js';

const disk = (path: string): VmDisk => ({ device: 'drive0', path, format: 'raw', virtualSize: 1 << 20, backingChain: [], cache: { writeback: false, direct: true, noFlush: false }, readOnly: false });

test('reportDisks says a target LV is one ferry created, and a device written into is not', () => {
  const plans: DiskPlan[] = [
    { disk: disk('/dev/vga/root'), index: 0, targetPath: '/dev/vgb/root', targetFormat: 'raw', create: true, sync: 'full', targetLv: { vg: 'vgb', lv: 'root', sizeBytes: 4 << 20 } },
    { disk: disk('/dev/sdb'), index: 1, targetPath: '/dev/sdc', targetFormat: 'raw', create: false, sync: 'full', targetDevice: true },
  ];
  const [lv, device] = reportDisks(plans);
  assert.deepEqual(lv!.target, { path: '/dev/vgb/root', format: 'raw', created: true, lv: { vg: 'vgb', name: 'root', size_bytes: 4 << 20, created: true } });
  assert.equal(device!.target.created, false);
  assert.equal(device!.target.lv, undefined);
});
