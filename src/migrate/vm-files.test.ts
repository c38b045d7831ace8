import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { keepOrDeleteSourceVmFiles, planVmFiles } from './vm-files.js';

const NVRAM = '/var/lib/libvirt/qemu/nvram/web1_VARS.fd';
const vm = { name: 'web1', ownFiles: [{ path: NVRAM, what: 'UEFI variable store' }] };

/** A host's agent with `file` at NVRAM (or none), holding bytes whose SHA-256 is `sha256`; it records what it was asked to remove. */
function host(name: string, file?: { sha256: string; size?: number }): AgentClient & { removed: string[] } {
  const removed: string[] = [];
  const calls: Record<string, (p: { path: string }) => unknown> = {
    'file.stat': () => (file ? { exists: true, type: 'file', size: file.size ?? 540672, mode: 0o600 } : { exists: false }),
    'file.sha256': () => ({ sha256: file!.sha256 }),
    'image.chain': (p) => [{ filename: p.path, format: 'raw', virtualSize: file!.size ?? 540672 }],
    'file.remove': (p) => void removed.push(p.path),
    'file.removeTree': (p) => void removed.push(`${p.path}/`),
  };
  const call = async (method: string, params: { path: string }): Promise<unknown> => {
    if (!calls[method]) throw new Error(`unexpected call ${method}`);
    return calls[method](params);
  };
  return { host: { name }, call, removed } as unknown as AgentClient & { removed: string[] };
}

const log = (): void => undefined;

test('a variable store the target lacks is planned for copying, with its size and its permissions', async () => {
  assert.deepEqual(await planVmFiles(vm, host('a', { sha256: 'aa' }), host('b'), { log }), [{ path: NVRAM, what: 'UEFI variable store', sizeBytes: 540672, mode: 0o600 }]);
});

test('one the source has not made yet (a domain never started) has nothing to carry', async () => {
  const said: string[] = [];
  assert.deepEqual(await planVmFiles(vm, host('a'), host('b'), { log: (m) => said.push(m) }), []);
  assert.match(said.join('\n'), /not on a yet: the hypervisor makes it at the VM's first start/);
});

test('the same bytes on the target are used as they are', async () => {
  const [plan] = await planVmFiles(vm, host('a', { sha256: 'aa' }), host('b', { sha256: 'aa' }), { log });
  assert.equal(plan?.present, true);
});

test('other bytes on the target are refused, naming the file, unless --force', async () => {
  await assert.rejects(
    planVmFiles(vm, host('a', { sha256: 'aa' }), host('b', { sha256: 'bb' }), { log }),
    (e: unknown) => e instanceof FerryError && e.code === 'TARGET_EXISTS' && e.message.includes(NVRAM) && /--force/.test(e.hint ?? ''),
  );
  const [plan] = await planVmFiles(vm, host('a', { sha256: 'aa' }), host('b', { sha256: 'bb' }), { log, force: true });
  assert.deepEqual([plan?.present, plan?.overwrite], [undefined, true]);
});

test('one an interrupted move made is continued into, whatever it holds', async () => {
  const [plan] = await planVmFiles(vm, host('a', { sha256: 'aa' }), host('b', { sha256: 'bb' }), { log, resumable: new Set([NVRAM]) });
  assert.equal(plan?.resume, true);
});

test("the source's copy goes only with --delete-source, and stays with a definition kept there", async () => {
  const journal = { id: 'm1', record: (): void => undefined };
  const plans = [{ path: NVRAM, what: 'UEFI variable store', sizeBytes: 540672 }];
  for (const [settings, removed] of [
    [{}, []],
    [{ deleteSource: true }, [NVRAM]],
    [{ deleteSource: true, keepSourceDefinition: true }, []],
  ] as const) {
    const source = host('a', { sha256: 'aa' });
    await keepOrDeleteSourceVmFiles(source, plans, settings, log, journal);
    assert.deepEqual(source.removed, removed, JSON.stringify(settings));
  }
});

test("with --delete-source a TPM's state goes with its directory, swtpm's lock in it", async () => {
  const source = host('a', { sha256: 'aa' });
  const dir = '/var/lib/libvirt/swtpm/u';
  await keepOrDeleteSourceVmFiles(source, [{ path: `${dir}/tpm2/tpm2-00.permall`, what: 'TPM state', ownDir: dir, sizeBytes: 9000 }], { deleteSource: true }, log, {
    id: 'm1',
    record: () => undefined,
  });
  assert.deepEqual(source.removed, [`${dir}/`]);
});

test("a live move leaves what the hypervisor's stream carries (a TPM's state); a VM that is off has it copied", async () => {
  const tpm = { name: 'web1', ownFiles: [{ path: '/var/lib/libvirt/swtpm/u/tpm2/tpm2-00.permall', what: 'TPM state', carriedLive: true }] };
  assert.deepEqual(await planVmFiles(tpm, host('a', { sha256: 'aa' }), host('b'), { log, live: true }), []);
  assert.equal((await planVmFiles(tpm, host('a', { sha256: 'aa' }), host('b'), { log })).length, 1);
});

test("a blank store at the path (a copy of the firmware's template, as a failed libvirt migration leaves) is replaced without --force; another VM's is not", async () => {
  const withTemplate = { name: 'web1', ownFiles: [{ path: NVRAM, what: 'UEFI variable store', template: '/usr/share/OVMF/OVMF_VARS_4M.fd' }] };
  const target = (templateSha: string): AgentClient => {
    const agent = host('b', { sha256: 'blank' });
    const call = agent.call.bind(agent);
    const answer = async (method: string, params: { path: string }): Promise<unknown> =>
      params.path === withTemplate.ownFiles[0]!.template && method === 'file.sha256' ? { sha256: templateSha } : call(method as never, params as never);
    return { ...agent, call: answer } as unknown as AgentClient;
  };
  const said: string[] = [];
  const [plan] = await planVmFiles(withTemplate, host('a', { sha256: 'aa' }), target('blank'), { log: (m) => said.push(m) });
  assert.equal(plan?.overwrite, true);
  assert.match(said.join('\n'), /is a blank UEFI variable store, a copy of \/usr\/share\/OVMF\/OVMF_VARS_4M.fd/);
  await assert.rejects(planVmFiles(withTemplate, host('a', { sha256: 'aa' }), target('other'), { log }), (e: unknown) => e instanceof FerryError && e.code === 'TARGET_EXISTS');
});
