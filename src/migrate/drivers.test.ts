import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { driverFor } from './drivers.js';

/** A source host's agent: `answers` gives each method's result, or the error it throws. */
function source(answers: Record<string, unknown>): AgentClient {
  return {
    host: { name: 'kvm1' },
    call: async (method: string) => {
      const answer = method in answers ? answers[method] : [];
      if (answer instanceof Error) throw answer;
      return answer;
    },
  } as unknown as AgentClient;
}

const unreachable = new FerryError('UNREACHABLE', 'Cannot reach libvirt at "qemu:///system" on kvm1: failed to connect to the hypervisor', {
  hint: 'start libvirtd on kvm1 ("systemctl start libvirtd"), or give the URI of one that runs',
});

test('a VM no driver has, where libvirtd cannot be reached, is unknown, and the error says libvirt could not be asked and how to fix it', async () => {
  await assert.rejects(
    driverFor(source({ 'qemu.list': [], 'libvirt.domain': unreachable, 'libvirt.available': { available: false, message: 'down' } }), 'web1'),
    (e: unknown) => e instanceof FerryError && e.code === 'UNKNOWN_VM' && /libvirt could not be asked \(Cannot reach libvirt/.test(e.hint ?? '') && /start libvirtd on kvm1/.test(e.hint ?? ''),
  );
});

test('a QEMU VM is found though libvirtd cannot be reached there', async () => {
  const { driver, found } = await driverFor(source({ 'qemu.list': [{ name: 'web1', pid: 42 }], 'libvirt.domain': unreachable }), 'web1');
  assert.equal(driver.name, 'qemu');
  assert.equal(found?.state, 'running');
});

test('a lost source agent is reported as lost, not as an unknown VM', async () => {
  const gone = new FerryError('AGENT_GONE', 'Lost the agent on host "kvm1"');
  await assert.rejects(driverFor(source({ 'qemu.list': gone, 'libvirt.domain': undefined }), 'web1'), (e: unknown) => e instanceof FerryError && e.code === 'AGENT_GONE');
});
