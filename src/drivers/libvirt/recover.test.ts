import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { recoverLibvirtMigration } from './recover.js';

/** A host's agent with one domain in `state` (null: none); `calls` lists what changed it. */
function host(name: string, state: string | null): { agent: AgentClient; calls: string[] } {
  const calls: string[] = [];
  let current = state;
  const agent = {
    host: { name },
    call: async (method: string) => {
      if (method === 'libvirt.state') return current === null ? undefined : { state: current };
      if (method === 'libvirt.jobInfo') return { type: 'none', other: {} };
      calls.push(method);
      if (method === 'libvirt.destroy') current = 'shut off';
      if (method === 'libvirt.undefine') current = null;
      return undefined;
    },
  } as unknown as AgentClient;
  return { agent, calls };
}

const rebootCommitted = [{ step: 'start', kind: 'live' }, { step: 'mode', mode: 'warm' }, { step: 'source-paused' }, { step: 'committed', host: 'kvm2' }];

test('recover after a --reboot committed on the target: the older copy, held paused on the source, is destroyed and undefined', async () => {
  const source = host('kvm1', 'paused');
  const target = host('kvm2', 'running');
  const r = await recoverLibvirtMigration('web1', source.agent, target.agent, rebootCommitted);
  assert.deepEqual(source.calls, ['libvirt.destroy', 'libvirt.undefine']);
  assert.deepEqual(target.calls, []);
  assert.deepEqual(r.settlement, { outcome: 'committed', source: 'undefined' });
});

test('recover after a --reboot --keep-source-definition committed: the older copy is destroyed and stays defined', async () => {
  const source = host('kvm1', 'paused');
  const target = host('kvm2', 'running');
  const journal = [{ ...rebootCommitted[0]!, keep_source_definition: true }, ...rebootCommitted.slice(1)];
  const r = await recoverLibvirtMigration('web1', source.agent, target.agent, journal);
  assert.deepEqual(source.calls, ['libvirt.destroy']);
  assert.deepEqual(r.settlement, { outcome: 'committed', source: 'shut off' });
});

test('recover of a live move that failed: the volume ferry made in a pool is removed, and the pool forgets it', async () => {
  const source = host('kvm1', 'running');
  const asked: Array<[string, unknown]> = [];
  const target = {
    host: { name: 'kvm2' },
    call: async (method: string, params: unknown) => {
      if (method === 'libvirt.state') return undefined;
      if (method === 'file.stat') return { exists: true, type: 'file' };
      if (method === 'process.holding') return { pids: [] };
      asked.push([method, params]);
      return undefined;
    },
  } as unknown as AgentClient;
  const journal = [
    { step: 'start', kind: 'live' },
    { step: 'vm', driver: 'libvirt', disks: [{ path: '/var/lib/libvirt/images/web1.qcow2', volume: { pool: 'default', name: 'web1.qcow2' } }, { path: '/srv/web1-data.raw' }] },
    { step: 'claimed', host: 'kvm2', files: ['/var/lib/libvirt/images/web1.qcow2', '/srv/web1-data.raw'] },
  ];
  const r = await recoverLibvirtMigration('web1', source.agent, target, journal);
  assert.deepEqual(asked, [
    ['file.remove', { path: '/var/lib/libvirt/images/web1.qcow2' }],
    ['file.remove', { path: '/srv/web1-data.raw' }],
    ['libvirt.poolRefresh', { pool: 'default' }],
  ]);
  assert.deepEqual(r.settlement, { outcome: 'aborted', source: 'running' });
});
