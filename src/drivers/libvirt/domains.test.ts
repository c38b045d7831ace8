import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import { endMigrationJob } from './domains.js';

/** A source agent whose libvirt job runs `jobs` more polls; `knows`: it is the agent that started virsh migrate. */
function source(opts: { knows: boolean; jobs: string[] }): { agent: AgentClient; calls: string[] } {
  const calls: string[] = [];
  const jobs = [...opts.jobs];
  const agent = {
    host: { name: 'kvm1' },
    call: async (method: string) => {
      calls.push(method);
      if (method === 'libvirt.migrate.abort') return opts.knows ? { exitCode: 1, error: 'operation aborted' } : undefined;
      if (method === 'libvirt.jobInfo') return { type: jobs.shift() ?? 'none', other: {} };
      if (method === 'libvirt.jobAbort') return { aborted: true };
      throw new Error(`unexpected ${method}`);
    },
  } as unknown as AgentClient;
  return { agent, calls };
}

test('the agent that runs virsh migrate aborts it and waits for virsh: nothing more to do', async () => {
  const { agent, calls } = source({ knows: true, jobs: ['unbounded'] });
  await endMigrationJob(agent, 'm1', 'web1', { pollMs: 1 });
  assert.deepEqual(calls, ['libvirt.migrate.abort']);
});

test("a new agent (the first was lost, its virsh orphaned) aborts the domain's job until libvirt reports none", async () => {
  const { agent, calls } = source({ knows: false, jobs: ['unbounded', 'unbounded', 'failed'] });
  await endMigrationJob(agent, 'm1', 'web1', { pollMs: 1 });
  assert.deepEqual(calls, ['libvirt.migrate.abort', 'libvirt.jobInfo', 'libvirt.jobAbort', 'libvirt.jobInfo', 'libvirt.jobAbort', 'libvirt.jobInfo']);
});

test('a job that never ends is reported with the command that ends it', async () => {
  const { agent } = source({ knows: false, jobs: Array<string>(1000).fill('unbounded') });
  await assert.rejects(
    endMigrationJob(agent, 'm1', 'web1', { pollMs: 1, timeoutMs: 20 }),
    (e: unknown) => e instanceof FerryError && e.code === 'MIGRATION_FAILED' && /virsh domjobabort web1/.test(e.hint ?? ''),
  );
});
