import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../hosts/agent-client.js';
import { sharedFiles } from './shared-storage.js';

/** A host's agent over an in-memory filesystem: `mounts` maps a directory to the store that holds it. */
function fakeHost(name: string, mounts: Map<string, Map<string, string>>): AgentClient {
  const store = (path: string): Map<string, string> => mounts.get(path.slice(0, path.lastIndexOf('/')))!;
  const calls: Record<string, (p: { path: string; text?: string }) => unknown> = {
    'file.stat': (p) => ({ exists: store(p.path)?.has(p.path) ?? false, type: store(p.path)?.has(p.path) ? 'file' : undefined }),
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
