import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import { parseDomainXml } from './domain-xml.js';
import { sameHostUuidError } from './domains.js';
import { checkCpu, checkNameFree, checkNetworks } from './target-checks.js';

/** A target host's agent answering the libvirt calls the checks make. */
function target(answers: Record<string, unknown>): AgentClient {
  return { host: { name: 'kvm2' }, call: async (method: string) => answers[method] } as unknown as AgentClient;
}

const domain = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server</model></cpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='network'><source network='prod'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
  </devices></domain>`);

async function refused(p: Promise<unknown>, code: string, hint: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof FerryError && e.code === code && hint.test(e.hint ?? ''));
}

test('a domain of the same name on the target is refused, with the command that frees the name', async () => {
  await refused(checkNameFree(target({ 'libvirt.state': { state: 'shut off' } }), 'web1'), 'TARGET_EXISTS', /virsh undefine web1/);
  await checkNameFree(target({ 'libvirt.state': undefined }), 'web1');
});

test('a CPU the target cannot give is refused, naming the missing features', async () => {
  await refused(
    checkCpu(target({ 'libvirt.cpuCompare': { verdict: 'incompatible', accepted: false, missingFeatures: ['avx512f', 'pku'], forbiddenFeatures: [] } }), domain, '<domain/>'),
    'INCOMPATIBLE_CPU',
    /avx512f, pku/,
  );
  await checkCpu(target({ 'libvirt.cpuCompare': { verdict: 'superset', accepted: true, missingFeatures: [], forbiddenFeatures: [] } }), domain, '<domain/>');
});

test('a libvirt network not active, or a bridge missing, on the target is refused with how to make it', async () => {
  await refused(checkNetworks(target({ 'libvirt.networks': [{ name: 'prod', active: false }], 'libvirt.bridges': [{ name: 'br0' }] }), domain), 'NO_NETWORK', /virsh net-start prod/);
  await refused(checkNetworks(target({ 'libvirt.networks': [{ name: 'prod', active: true }], 'libvirt.bridges': [{ name: 'virbr0' }] }), domain), 'NO_NETWORK', /ip link add br0 type bridge/);
  await checkNetworks(target({ 'libvirt.networks': [{ name: 'prod', active: true }], 'libvirt.bridges': [{ name: 'br0' }] }), domain);
});

test('two libvirt hosts with one host UUID: the error names the fix (seed 002)', () => {
  const e = sameHostUuidError('kvm1', 'kvm2', '00000000-0000-0000-0000-0000000000aa');
  assert.equal(e.code, 'SAME_HOST_UUID');
  assert.match(e.message, /attempt to migrate guest to the same host/);
  assert.match(e.hint ?? '', /host_uuid.*libvirtd\.conf on "kvm2"/);
});
