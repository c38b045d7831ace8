import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../hosts/agent-client.js';
import type { BlockIdentity } from '../storage/block-identity.js';
import { sharedFiles } from './shared-storage.js';

/**
 * A host's agent over an in-memory filesystem: `mounts` maps a directory to
 * the store that holds it; `devices`, a block device's path to its identity.
 */
function fakeHost(name: string, mounts: Map<string, Map<string, string>>, devices = new Map<string, BlockIdentity>()): AgentClient {
  const store = (path: string): Map<string, string> => mounts.get(path.slice(0, path.lastIndexOf('/')))!;
  const calls: Record<string, (p: { path: string; text?: string }) => unknown> = {
    'file.stat': (p) =>
      devices.has(p.path)
        ? { exists: true, type: 'block', size: devices.get(p.path)!.sizeBytes }
        : { exists: store(p.path)?.has(p.path) ?? false, type: store(p.path)?.has(p.path) ? 'file' : undefined },
    'volume.identity': (p) => devices.get(p.path) ?? null,
    'file.write': (p) => void store(p.path).set(p.path, p.text!),
    'file.read': (p) => {
      const text = store(p.path)?.get(p.path);
      if (text === undefined) throw new Error('ENOENT');
      return { text };
    },
    'file.remove': (p) => void store(p.path)?.delete(p.path),
  };
  return { host: { name }, call: async (method: string, params: { path: string }) => calls[method]!(params) } as unknown as AgentClient;
}

test('a disk is shared only when the target reads the marker beside the same file name', async () => {
  const nfs = new Map([['/nfs/vm.qcow2', 'image']]);
  const localA = new Map([['/var/lib/img/local.qcow2', 'image']]);
  const localB = new Map([['/var/lib/img/local.qcow2', 'another image']]);
  const a = fakeHost(
    'a',
    new Map([
      ['/nfs', nfs],
      ['/var/lib/img', localA],
    ]),
  );
  const b = fakeHost(
    'b',
    new Map([
      ['/nfs', nfs],
      ['/var/lib/img', localB],
    ]),
  );
  const shared = await sharedFiles(a, b, [
    { path: '/nfs/vm.qcow2', targetPath: '/nfs/vm.qcow2' },
    { path: '/var/lib/img/local.qcow2', targetPath: '/var/lib/img/local.qcow2' },
  ]);
  assert.deepEqual([...shared], ['/nfs/vm.qcow2'], 'the same path on local disks is not the same file');
  assert.deepEqual([...nfs.keys()], ['/nfs/vm.qcow2'], 'the marker is removed');
  assert.deepEqual([...localA.keys()], ['/var/lib/img/local.qcow2']);
});

test('a disk mapped to another name on the shared mount is copied, not shared', async () => {
  const nfs = new Map([['/nfs/vm.qcow2', 'image']]);
  const a = fakeHost('a', new Map([['/nfs', nfs]]));
  const b = fakeHost('b', new Map([['/nfs', nfs]]));
  assert.equal((await sharedFiles(a, b, [{ path: '/nfs/vm.qcow2', targetPath: '/nfs/vm-copy.qcow2' }])).size, 0);
});

test('a block device is shared when both hosts name it alike (another path there included), never by its path alone', async () => {
  const lun: BlockIdentity = { id: 'wwid=naa.600a0980383046', sizeBytes: 2 ** 30 };
  const a = fakeHost(
    'a',
    new Map(),
    new Map<string, BlockIdentity>([
      ['/dev/sdb', lun],
      ['/dev/sdc', { id: 'wwid=naa.6001', sizeBytes: 2 ** 30 }],
      ['/dev/vdb', { sizeBytes: 2 ** 30 }],
    ]),
  );
  const b = fakeHost(
    'b',
    new Map(),
    new Map<string, BlockIdentity>([
      ['/dev/sdd', lun],
      ['/dev/sdc', { id: 'wwid=naa.6002', sizeBytes: 2 ** 30 }],
      ['/dev/vdb', { sizeBytes: 2 ** 30 }],
    ]),
  );
  const shared = await sharedFiles(a, b, [
    { path: '/dev/sdb', targetPath: '/dev/sdd' },
    { path: '/dev/sdc', targetPath: '/dev/sdc' },
    { path: '/dev/vdb', targetPath: '/dev/vdb' },
  ]);
  assert.deepEqual([...shared], ['/dev/sdb'], 'another WWID, or none, is another device');
});

test('a loop device is shared when its backing file is: the marker goes beside that file', async () => {
  const nfs = new Map([['/nfs/vm.raw', 'image']]);
  const localA = new Map([['/var/lib/img/vm.raw', 'image']]);
  const localB = new Map([['/var/lib/img/vm.raw', 'image']]);
  const mounts = (local: Map<string, string>): Map<string, Map<string, string>> =>
    new Map([
      ['/nfs', nfs],
      ['/var/lib/img', local],
    ]);
  const a = fakeHost(
    'a',
    mounts(localA),
    new Map([
      ['/dev/loop3', { loopBackingFile: '/nfs/vm.raw', id: 'loop-offset=0', sizeBytes: 5 }],
      ['/dev/loop5', { loopBackingFile: '/nfs/vm.raw', id: 'loop-offset=0', sizeBytes: 5 }],
      ['/dev/loop4', { loopBackingFile: '/var/lib/img/vm.raw', id: 'loop-offset=0', sizeBytes: 5 }],
    ]),
  );
  const b = fakeHost(
    'b',
    mounts(localB),
    new Map([
      ['/dev/loop7', { loopBackingFile: '/nfs/vm.raw', id: 'loop-offset=0', sizeBytes: 5 }],
      // Another stretch of the same file (another LV of one PV): another device.
      ['/dev/loop8', { loopBackingFile: '/nfs/vm.raw', id: 'loop-offset=4096', sizeBytes: 5 }],
      ['/dev/loop4', { loopBackingFile: '/var/lib/img/vm.raw', id: 'loop-offset=0', sizeBytes: 5 }],
    ]),
  );
  const shared = await sharedFiles(a, b, [
    { path: '/dev/loop3', targetPath: '/dev/loop7' },
    { path: '/dev/loop4', targetPath: '/dev/loop4' },
    { path: '/dev/loop5', targetPath: '/dev/loop8' },
  ]);
  assert.deepEqual([...shared], ['/dev/loop3']);
  assert.deepEqual([...nfs.keys()], ['/nfs/vm.raw'], 'the marker is removed');
});
