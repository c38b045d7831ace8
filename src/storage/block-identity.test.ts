import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockIdentity, identityOfDevice } from './block-identity.js';

/** A sysfs tree with a device directory at `device` (relative to it), reached as /dev/block/MAJ:MIN, holding `files`. */
async function sysfsWith(root: string, devno: string, device: string, files: Record<string, string>): Promise<void> {
  await mkdir(join(root, 'dev', 'block'), { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(root, device, name, '..'), { recursive: true });
    await writeFile(join(root, device, name), text);
  }
  await symlink(join(root, device), join(root, 'dev', 'block', devno));
}

test('a block device is named by what its kernel reads from it: WWID, device-mapper UUID or serial, a partition by its number too', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ferry-sysfs-'));
  try {
    await sysfsWith(root, '8:16', 'devices/pci/host0/block/sdb', { size: '2048\n', 'device/wwid': 'naa.600a0980383046\n' });
    await sysfsWith(root, '8:17', 'devices/pci/host0/block/sdb/sdb1', { size: '1024\n', partition: '1\n' });
    await sysfsWith(root, '253:3', 'devices/virtual/block/dm-3', { size: '8\n', 'dm/uuid': 'mpath-3600a0980383046\n', serial: 'ignored' });
    await sysfsWith(root, '252:0', 'devices/pci/virtio4/block/vdb', { size: '8\n', serial: 'disk-7\n' });
    await sysfsWith(root, '7:5', 'devices/virtual/block/loop5', { size: '131072\n', 'loop/backing_file': '/nfs/vm1.raw\n', 'loop/offset': '0\n' });
    await sysfsWith(root, '7:6', 'devices/virtual/block/loop6', { size: '8\n', 'loop/backing_file': '/nfs/pv.raw\n', 'loop/offset': '1048576\n' });
    await sysfsWith(root, '259:1', 'devices/virtual/block/zram1', { size: '8\n' });
    assert.deepEqual(await identityOfDevice(8, 16, root), { sizeBytes: 2048 * 512, id: 'wwid=naa.600a0980383046' });
    assert.deepEqual(await identityOfDevice(8, 17, root), { sizeBytes: 1024 * 512, id: 'wwid=naa.600a0980383046:part1' });
    assert.deepEqual(await identityOfDevice(253, 3, root), { sizeBytes: 8 * 512, id: 'dm/uuid=mpath-3600a0980383046' });
    assert.deepEqual(await identityOfDevice(252, 0, root), { sizeBytes: 8 * 512, id: 'serial=disk-7' });
    assert.deepEqual(await identityOfDevice(7, 5, root), { sizeBytes: 64 * 2 ** 20, loopBackingFile: '/nfs/vm1.raw', id: 'loop-offset=0' });
    assert.deepEqual(await identityOfDevice(7, 6, root), { sizeBytes: 8 * 512, loopBackingFile: '/nfs/pv.raw', id: 'loop-offset=1048576' });
    // A device that names nothing of itself cannot be told apart from another host's.
    assert.deepEqual(await identityOfDevice(259, 1, root), { sizeBytes: 8 * 512 });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a path that is no block device has no identity', async () => {
  assert.equal(await blockIdentity('/nonexistent/ferry-block'), null);
  assert.equal(await blockIdentity(tmpdir()), null);
});
