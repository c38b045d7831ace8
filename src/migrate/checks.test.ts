import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmInfo } from '../drivers/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { checkMemory, checkMigrationAddress } from './checks.js';

/** A host's agent at `address`, with `memAvailableBytes` free, that resolves names as `resolves` says. */
function host(name: string, address: string, options: { memAvailableBytes?: number; resolves?: Record<string, string[]> } = {}): AgentClient {
  return {
    host: { name, address },
    facts: { memAvailableBytes: options.memAvailableBytes ?? 2 ** 40 },
    call: async (_method: string, p: { name: string }) => ({ addresses: options.resolves?.[p.name] ?? [] }),
  } as unknown as AgentClient;
}

function refusedWith(code: string, message: RegExp, hint: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof FerryError && e.code === code && message.test(e.message) && hint.test(e.hint ?? '');
}

test('a migration address the source cannot resolve, or that resolves to loopback on a real network, is refused with where to fix it', async () => {
  const target = host('kvm2', 'kvm2.example');
  await assert.rejects(checkMigrationAddress(host('kvm1', '10.0.0.1'), target), refusedWith('UNREACHABLE', /cannot resolve "kvm2\.example"/, /inventory to an IP address/));
  // Seed operators' classic: the target's name mapped to 127.0.1.1 in the source's /etc/hosts.
  await assert.rejects(
    checkMigrationAddress(host('kvm1', '10.0.0.1', { resolves: { 'kvm2.example': ['127.0.1.1'] } }), target),
    refusedWith('UNREACHABLE', /resolves to 127\.0\.1\.1 on "kvm1": the source would connect to itself/, /\/etc\/hosts on "kvm1"/),
  );
  await checkMigrationAddress(host('kvm1', '10.0.0.1', { resolves: { 'kvm2.example': ['10.0.0.2'] } }), target);
  // Hosts on one machine (the lab) migrate over loopback, rightly.
  await checkMigrationAddress(host('lab-a', '127.0.0.2', { resolves: { '127.0.0.3': ['127.0.0.3'] } }), host('lab-b', '127.0.0.3'));
});

test("a target without room for the VM's memory and its process is refused", () => {
  const vm = { name: 'web1', memoryBytes: 4 * 2 ** 30 } as VmInfo;
  assert.throws(
    () => checkMemory(vm, host('kvm2', '10.0.0.2', { memAvailableBytes: 4 * 2 ** 30 })),
    refusedWith('NO_MEMORY', /"kvm2" has 4096\.0 MiB free, VM "web1" needs 4224\.0 MiB/, /free memory on the target/),
  );
  checkMemory(vm, host('kvm2', '10.0.0.2', { memAvailableBytes: 5 * 2 ** 30 }));
});
