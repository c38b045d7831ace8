import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyDeviceName, targetKernelName } from './device-names.js';

test('bus-independent names survive the move', () => {
  for (const spec of ['UUID=3e6be9de-8139-11d1-9106-a43f08d823a6', 'LABEL=root', 'PARTUUID=0a1b2c3d-01', '/dev/mapper/vg0-root', '/dev/vg0/root', '/dev/disk/by-uuid/3e6b', '/dev/md0']) {
    assert.equal(classifyDeviceName(spec).survives, true, spec);
  }
});

test('Xen, IDE, SCSI and by-path names do not survive a move to virtio', () => {
  const xvd = classifyDeviceName('/dev/xvda1');
  assert.deepEqual([xvd.kind, xvd.disk, xvd.partition, xvd.survives], ['kernel', 'xvda', 1, false]);
  assert.equal(classifyDeviceName('/dev/hda2').survives, false);
  assert.equal(classifyDeviceName('/dev/sdb').partition, undefined);
  assert.equal(classifyDeviceName('/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part1').kind, 'by-path');
  assert.equal(classifyDeviceName('/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part1').survives, false);
  assert.equal(classifyDeviceName('/dev/cciss/c0d0p8').disk, 'cciss/c0d0');
});

test('virtio names survive a move to virtio', () => {
  assert.equal(classifyDeviceName('/dev/vda1').survives, true);
  assert.equal(classifyDeviceName('/dev/vda1', { diskPrefix: 'sd' }).survives, false);
});

test('pseudo and network filesystems are left alone', () => {
  assert.equal(classifyDeviceName('proc').kind, 'pseudo');
  assert.equal(classifyDeviceName('tmpfs').survives, true);
  assert.equal(classifyDeviceName('nfs.example:/export').kind, 'network');
});

test('the target kernel name keeps the disk letter and partition', () => {
  assert.equal(targetKernelName(classifyDeviceName('/dev/xvdb5')), '/dev/vdb5');
  assert.equal(targetKernelName(classifyDeviceName('/dev/hda')), '/dev/vda');
  assert.equal(targetKernelName(classifyDeviceName('UUID=x')), undefined);
});
