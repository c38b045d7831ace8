import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../hosts/agent-client.js';
import type { ImageInfo } from '../storage/image-info.js';
import { compareDisks } from './same-disk.js';

/** A host's agent that knows one image: its file's SHA-256 and what qemu-img says of it. Any other call (a sync) fails the test. */
function host(name: string, sha256: string, image: Omit<ImageInfo, 'filename'>): AgentClient {
  const calls: Record<string, (p: { path: string }) => unknown> = {
    'file.sha256': () => ({ sha256 }),
    'image.chain': (p) => [{ filename: p.path, ...image }],
  };
  const call = async (method: string, params: { path: string }): Promise<unknown> => {
    if (!calls[method]) throw new Error(`unexpected call ${method}`);
    return calls[method](params);
  };
  return { host: { name }, call } as unknown as AgentClient;
}

const qcow2 = { format: 'qcow2', virtualSize: 1 << 30 };

test('the same bytes on both hosts are the same disk, without reading it further', async () => {
  const found = await compareDisks('/img/base.qcow2', '/img/base.qcow2', host('a', 'aa', qcow2), host('b', 'aa', qcow2));
  assert.deepEqual(found, { same: true, by: 'bytes', sourceSha256: 'aa', targetSha256: 'aa' });
});

test('a raw file with other bytes is another disk: no dry run is asked', async () => {
  const raw = { format: 'raw', virtualSize: 1 << 30 };
  const found = await compareDisks('/iso/a.iso', '/iso/a.iso', host('a', 'aa', raw), host('b', 'bb', raw));
  assert.equal(found.same, false);
});

test('an image of another format or virtual size on the target is another disk, whatever the blocks', async () => {
  for (const other of [
    { format: 'raw', virtualSize: 1 << 30 },
    { format: 'qcow2', virtualSize: 2 << 30 },
  ]) {
    const found = await compareDisks('/img/base.qcow2', '/img/base.qcow2', host('a', 'aa', qcow2), host('b', 'bb', other));
    assert.equal(found.same, false, JSON.stringify(other));
  }
});

test('an image of another size is told apart without hashing either file (a large ISO of another release)', async () => {
  const unhashed = (name: string, image: Omit<ImageInfo, 'filename'>): AgentClient => {
    const agent = host(name, 'unused', image);
    const call = agent.call.bind(agent);
    return {
      ...agent,
      call: async (method: string, params: { path: string }) => (method === 'file.sha256' ? assert.fail(`${name} hashed ${params.path}`) : call(method as never, params as never)),
    } as unknown as AgentClient;
  };
  const found = await compareDisks('/iso/os.iso', '/iso/os.iso', unhashed('a', { format: 'raw', virtualSize: 4 << 30 }), unhashed('b', { format: 'raw', virtualSize: 3 << 30 }));
  assert.deepEqual(found, { same: false });
});
