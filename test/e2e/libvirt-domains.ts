/** The e2e tests' libvirt domains on the lab hosts: started as the test guest, their state, removed with their disks. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labState, labVirsh } from '../../src/lab/lab.js';
import { labDomainNames, labNvramPath, stopLabVm } from '../../src/lab/vm.js';
import { diskPath, ferry, labVmPaths, waitForCounter } from './harness.js';

/** Removes the domain and its disks from every host given. */
export async function cleanDomain(hosts: readonly AgentClient[], name: string, disks = 2): Promise<void> {
  for (const agent of hosts) {
    if ((await labDomainNames(agent.host.name)).includes(name)) await stopLabVm(agent, name);
    for (let i = 0; i < disks; i++) await agent.call('file.remove', { path: diskPath(name, i) });
    await agent.call('file.remove', { path: labVmPaths(name).serialLog });
    // A UEFI domain's variable store, which a move leaves on the source unless told otherwise.
    await agent.call('file.remove', { path: labNvramPath(name) });
  }
}

/** A directory storage pool for the tests' volumes: its name and directory on each lab host. */
export interface TestPool {
  name: string;
  dir: string;
}

/** Defines, builds and starts `pool` on `host`. */
export async function definePool(host: string, pool: TestPool): Promise<void> {
  await labVirsh(host, ['pool-define-as', pool.name, 'dir', '--target', pool.dir]);
  await labVirsh(host, ['pool-build', pool.name]);
  await labVirsh(host, ['pool-start', pool.name]);
}

/** Removes `pool` from the agent's host, its directory and volumes with it; nothing to do where there is none. */
export async function removePool(agent: AgentClient, pool: TestPool): Promise<void> {
  await labVirsh(agent.host.name, ['pool-destroy', pool.name]).catch(() => undefined);
  await labVirsh(agent.host.name, ['pool-undefine', pool.name]).catch(() => undefined);
  await agent.call('system.run', { file: 'rm', args: ['-rf', pool.dir] });
}

/** Starts the test guest as a libvirt domain on lab-a and waits for its first records. */
export async function startDomain(a: AgentClient, name: string, extra: string[] = []): Promise<void> {
  const r = await ferry(['lab', 'vm', 'start', name, '--host', 'lab-a', '--libvirt', ...extra]);
  assert.equal(r.code, 0, r.stderr);
  await waitForCounter(a, name, 5);
}

export async function domainState(host: string, name: string): Promise<string | undefined> {
  if (!(await labDomainNames(host)).includes(name)) return undefined;
  return (await labVirsh(host, ['domstate', name])).trim();
}

/** The incoming QEMU libvirt started for `vm` on either lab host, by its pid on this machine. */
export function incomingQemu(vm: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('qemu-system') && argv.includes(`guest=${vm},debug-threads=on`) && argv.includes('-incoming')) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Each QEMU process of domain `vm` (incoming or not): its pid on this machine and the lab host it runs on. */
export async function domainQemus(vm: string): Promise<Array<{ pid: number; host: string }>> {
  const hosts = new Map((await labState())?.hosts.map((h) => [readlinkSync(`/proc/${h.pid}/ns/pid`), h.name]) ?? []);
  const found: Array<{ pid: number; host: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.includes('qemu-system') && argv.includes(`guest=${vm},debug-threads=on`)) found.push({ pid: Number(entry), host: hosts.get(readlinkSync(`/proc/${entry}/ns/pid`)) ?? 'elsewhere' });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The lab hosts where a QEMU process of domain `vm` runs (incoming or not), one entry per process. */
export async function domainQemuHosts(vm: string): Promise<string[]> {
  return (await domainQemus(vm)).map((q) => q.host);
}

/** The tail of the domain's QEMU log (libvirt's) on each host, for a failure's message: a QEMU that ended by itself says why there. */
export async function domainLogs(hosts: readonly AgentClient[], name: string): Promise<string> {
  const tails = [];
  for (const h of hosts) {
    const log = await h.call('file.read', { path: `/var/log/libvirt/qemu/${name}.log` }).catch(() => undefined);
    tails.push(`libvirt's QEMU log of ${name} on ${h.host.name}: ${log ? log.text.split('\n').slice(-15).join('\n') : '(none)'}`);
  }
  return tails.join('\n');
}
