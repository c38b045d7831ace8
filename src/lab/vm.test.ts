import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQemuArgv, parseKeyval } from '../drivers/qemu/argv.js';
import { labDiskPath, labVmArgv, labVmPaths, type LabVmArgvOptions } from './vm.js';

const paths = labVmPaths('web01');
const vm: LabVmArgvOptions = {
  name: 'web01',
  kernel: '/k',
  initrd: '/i',
  append: 'console=ttyS0 ferry.dirty=16',
  accel: 'tcg',
  disks: [
    { path: labDiskPath('web01', 0), format: 'qcow2' },
    { path: '/var/lib/ferry/images/data.raw', format: 'raw' },
  ],
  serialLog: paths.serialLog,
  qmpSocket: paths.qmpSocket,
};

test('ferry finds a lab VM by its command line as it finds any VM: its name and QMP socket', () => {
  const parsed = parseQemuArgv(labVmArgv(vm));
  assert.equal(parsed.name, 'web01');
  assert.equal(parsed.qmpSocket, '/run/ferry/web01.qmp');
});

test('each lab disk is one drive with its format and cache mode behind one virtio-blk device, in order', () => {
  const options = parseQemuArgv(labVmArgv({ ...vm, cache: 'writeback' })).options;
  const drives = options.filter((o) => o.flag === '-drive').map((o) => parseKeyval(o.value!));
  assert.deepEqual(
    drives.map((d) => [d.get('file'), d.get('format'), d.get('id'), d.get('cache')]),
    [
      ['/var/lib/ferry/images/web01-disk0.qcow2', 'qcow2', 'drive0', 'writeback'],
      ['/var/lib/ferry/images/data.raw', 'raw', 'drive1', 'writeback'],
    ],
  );
  const devices = options.filter((o) => o.flag === '-device').map((o) => parseKeyval(o.value!, 'driver'));
  assert.deepEqual(
    devices.map((d) => [d.get('driver'), d.get('drive')]),
    [
      ['virtio-blk-pci', 'drive0'],
      ['virtio-blk-pci', 'drive1'],
    ],
  );
  assert.equal(parseKeyval(labVmArgv(vm).find((a) => a.startsWith('file=/var/lib/ferry/images/web01'))!).get('cache'), 'none', 'no host page cache unless asked');
});

test('a lab VM takes the host CPU under KVM only, and boots without an initrd when given none', () => {
  const flags = (o: LabVmArgvOptions): string[] => parseQemuArgv(labVmArgv(o)).options.map((x) => x.flag);
  assert.ok(flags({ ...vm, accel: 'kvm' }).includes('-cpu'));
  assert.ok(!flags(vm).includes('-cpu'));
  assert.ok(flags(vm).includes('-initrd'));
  assert.ok(!flags({ ...vm, initrd: undefined }).includes('-initrd'));
});
