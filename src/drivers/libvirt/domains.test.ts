import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import { parseDomainXml } from './domain-xml.js';
import { carryAutostart, endMigrationJob, refuseLivePassthrough, refuseUnmovable, sourceAfterAbort, stateAfterJob } from './domains.js';
import type { FoundDomain } from './host/handlers.js';

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

/** An agent whose `libvirt.state` answers from `states` in turn (an Error is thrown), recording each call. */
function stateful(states: Array<string | null | Error>): { agent: AgentClient; calls: string[] } {
  const calls: string[] = [];
  const agent = {
    host: { name: 'kvm1' },
    call: async (method: string) => {
      calls.push(method);
      if (method === 'libvirt.resume') return { wasPaused: true };
      const next = states.shift();
      if (next instanceof Error) throw next;
      return next === null ? undefined : { state: next };
    },
  } as unknown as AgentClient;
  return { agent, calls };
}

test('a state libvirt did not give is asked again, not taken for "not running"', async () => {
  const { agent } = stateful([new Error('cannot acquire state change lock'), 'running']);
  assert.equal((await stateAfterJob(agent, 'web1', { pollMs: 1 })).state, 'running');
});

test('a state that never comes is an error that names the command to ask it by hand', async () => {
  const { agent } = stateful(Array<Error>(5).fill(new Error('no answer')));
  await assert.rejects(stateAfterJob(agent, 'web1', { pollMs: 1, tries: 3 }), (e: unknown) => e instanceof FerryError && /virsh domstate web1/.test(e.hint ?? ''));
});

test('a source left paused by an aborted job is resumed if it ran before the move, and left paused if it was paused', async () => {
  const ran = stateful(['paused', 'running']);
  assert.equal((await sourceAfterAbort(ran.agent, 'web1', { ranBefore: true })).state, 'running');
  assert.deepEqual(ran.calls, ['libvirt.state', 'libvirt.resume', 'libvirt.state']);
  const paused = stateful(['paused']);
  assert.equal((await sourceAfterAbort(paused.agent, 'web1', { ranBefore: false })).state, 'paused');
  assert.deepEqual(paused.calls, ['libvirt.state']);
  const gone = stateful([null]);
  assert.equal((await sourceAfterAbort(gone.agent, 'web1', { ranBefore: true })).state, null);
});

/** A host whose libvirt has `defined` (name -> autostart); `failing`: its autostart calls fail. */
function autostartHost(name: string, defined: Map<string, boolean>, failing = false): AgentClient {
  return {
    host: { name },
    call: async (method: string, p: { domain: string; enable?: boolean }) => {
      if (method === 'libvirt.state') return defined.has(p.domain) ? { state: 'shut off' } : undefined;
      if (method === 'libvirt.autostart') {
        if (failing) throw new Error('virsh: internal error');
        defined.set(p.domain, p.enable!);
        return undefined;
      }
      throw new Error(`unexpected ${method}`);
    },
  } as unknown as AgentClient;
}

test('autostart moves with the domain: set on the target, cleared on a definition the source keeps', async () => {
  const onA = new Map([['web1', true]]);
  const onB = new Map([['web1', false]]);
  const logs: string[] = [];
  await carryAutostart(autostartHost('a', onA), autostartHost('b', onB), 'web1', (m) => logs.push(m));
  assert.deepEqual([onA.get('web1'), onB.get('web1')], [false, true]);
  assert.match(logs.join('\n'), /autostart cleared on a's kept definition: only b starts web1 when it boots/);
});

test('autostart: a source without the definition is left alone; a failure is said with the command, not thrown', async () => {
  const onA = new Map<string, boolean>();
  const logs: string[] = [];
  await carryAutostart(autostartHost('a', onA), autostartHost('b', new Map(), true), 'web1', (m) => logs.push(m));
  assert.equal(onA.size, 0);
  assert.match(logs.join('\n'), /could not set autostart of web1 on b: .*run "virsh autostart web1" there/);
});

test('a domain with snapshots, or with a saved running state, is refused with what to do', () => {
  const found = { name: 'web1', autostart: false, managedSave: false, snapshots: ['before-upgrade', 'clean'] } as unknown as FoundDomain;
  assert.throws(
    () => refuseUnmovable(found, 'kvm1'),
    (e: unknown) => e instanceof FerryError && e.code === 'INCOMPATIBLE' && /has 2 snapshots \(before-upgrade, clean\)/.test(e.message) && /virsh snapshot-delete web1/.test(e.hint ?? ''),
  );
  assert.throws(
    () => refuseUnmovable({ ...found, snapshots: [], managedSave: true }, 'kvm1'),
    (e: unknown) => e instanceof FerryError && /running state saved/.test(e.message) && /virsh start web1.*virsh managedsave-remove web1/.test(e.hint ?? ''),
  );
  assert.doesNotThrow(() => refuseUnmovable({ ...found, snapshots: [] }, 'kvm1'));
});

test('a running domain with a device passed through from its host is refused a live move, naming the device; a USB device is no obstacle', () => {
  const domain = parseDomainXml(`<domain type='kvm'><name>gpu1</name><memory unit='MiB'>256</memory><os><type arch='x86_64'>hvm</type></os><devices>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x046d'/><product id='0xc52b'/></source></hostdev>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>
    <filesystem type='mount'><driver type='virtiofs'/><source dir='/srv/share'/><target dir='share'/></filesystem>
  </devices></domain>`);
  assert.deepEqual(domain.passthrough, ['host PCI device 0000:01:00.0', 'virtiofs share of /srv/share']);
  assert.throws(
    () => refuseLivePassthrough(domain, 'kvm1'),
    (e: unknown) => e instanceof FerryError && e.code === 'INCOMPATIBLE' && /has a host PCI device 0000:01:00\.0 \(and 1 more\) passed through/.test(e.message) && /--mode cold/.test(e.hint ?? ''),
  );
  assert.doesNotThrow(() => refuseLivePassthrough({ ...domain, passthrough: [] }, 'kvm1'));
});
