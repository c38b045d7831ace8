import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { claimedSecrets, copySecrets, removeSecrets } from './secret-copy.js';

/** An agent answering `answers` by method, recording each call (and the journal's lines, in `log`). */
function agent(name: string, log: string[], answers: Record<string, (p: Record<string, unknown>) => unknown>): AgentClient {
  const call = async (method: string, params: Record<string, unknown>): Promise<unknown> => {
    log.push(`${name} ${method}`);
    return answers[method]!(params);
  };
  return { host: { name }, call } as unknown as AgentClient;
}

test('each secret is claimed in the journal before it is defined on the target, its value never in the journal or the log', async () => {
  const events: string[] = [];
  const journal: Array<{ step: string; [k: string]: unknown }> = [];
  const source = agent('a', events, { 'libvirt.secret.read': (p) => ({ uuid: (p.uuid as string) ?? 'u-by-usage', xml: '<secret/>', value: 'c2VjcmV0' }) });
  let defines = 0;
  const target = agent('b', events, {
    'libvirt.secret.define': () => {
      if (++defines === 2) throw new Error('libvirtd went away');
    },
  });
  const claimed: string[] = [];
  const said: string[] = [];
  const record = (step: string, data?: Record<string, unknown>): void => {
    events.push(`journal ${step}`);
    journal.push({ step, ...data });
  };
  await assert.rejects(
    copySecrets(source, target, [{ uuid: 'u1' }, { type: 'iscsi', usage: 'x' }], claimed, { id: 'm1', record }, (m) => said.push(m)),
    /went away/,
  );
  assert.deepEqual(events, ['a libvirt.secret.read', 'journal secret-claimed', 'b libvirt.secret.define', 'a libvirt.secret.read', 'journal secret-claimed', 'b libvirt.secret.define']);
  assert.deepEqual(claimed, ['u1', 'u-by-usage'], 'the one whose definition failed is claimed too: its settling undefines it if it is there');
  assert.deepEqual(claimedSecrets(journal), ['u1', 'u-by-usage']);
  assert.doesNotMatch(JSON.stringify(journal) + said.join('\n'), /c2VjcmV0/);
});

test('removing the secrets a failed move defined goes on past one that cannot be undefined, and says so', async () => {
  const said: string[] = [];
  const target = agent('b', [], {
    'libvirt.secret.undefine': (p) => {
      if (p.uuid === 'u1') throw new Error('no libvirtd');
    },
  });
  await removeSecrets(target, ['u1', 'u2'], (m) => said.push(m));
  assert.deepEqual(said, ['could not undefine secret u1 on b: no libvirtd', 'undefined secret u2 on b, which this move had defined']);
});
