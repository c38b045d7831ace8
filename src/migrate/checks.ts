/**
 * Checks that hold whatever the hypervisor: two distinct machines, room for
 * the VM's memory on the target, the files it boots from present there. A
 * driver adds what only it can see (versions, CPU, networks).
 */
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { formatMiB, MiB } from '../util/units.js';
import type { VmInfo } from '../drivers/driver.js';
import { isLoopback } from '../util/net.js';

/** Memory a VM's process needs beyond its guest RAM. */
const PROCESS_OVERHEAD = 128 * MiB;

export function checkDistinctHosts(source: AgentClient, target: AgentClient): void {
  if (source.facts.hostId === target.facts.hostId) {
    throw new FerryError('SAME_HOST', `Hosts "${source.host.name}" and "${target.host.name}" are the same machine (host id ${source.facts.hostId})`, {
      hint: 'choose another target with --to; if they really differ, give them distinct /etc/machine-id',
    });
  }
}

export function checkRunning(vm: VmInfo, source: AgentClient): void {
  if (vm.state !== 'running') {
    throw new FerryError('VM_NOT_RUNNING', `VM "${vm.name}" on "${source.host.name}" is ${vm.state}, not running`, {
      hint: 'live migration moves a running VM; resume it first',
    });
  }
}

export function checkMemory(vm: VmInfo, target: AgentClient): void {
  const need = vm.memoryBytes + PROCESS_OVERHEAD;
  if (target.facts.memAvailableBytes < need) {
    throw new FerryError('NO_MEMORY', `Host "${target.host.name}" has ${formatMiB(target.facts.memAvailableBytes)} MiB free, VM "${vm.name}" needs ${formatMiB(need)} MiB`, {
      hint: 'free memory on the target or choose another target with --to',
    });
  }
}

export async function checkAuxFiles(vm: VmInfo, source: AgentClient, target: AgentClient): Promise<void> {
  const stats = await Promise.all(vm.auxFiles.map((path) => target.call('file.stat', { path })));
  for (const [i, f] of vm.auxFiles.entries()) {
    if (!stats[i]!.exists) {
      throw new FerryError('NOT_FOUND', `VM "${vm.name}" boots from "${f}", which does not exist on "${target.host.name}"`, {
        hint: `copy it there at the same path (e.g. "ferry sync ${source.host.name}:${f} ${target.host.name}:${f}")`,
      });
    }
  }
}

/**
 * The source must reach the target at its migration address. A name that
 * resolves to a loopback address there (a hostname mapped to 127.0.1.1 in
 * /etc/hosts, a common cause of failed migrations) would have the source
 * connect to itself; on one machine, as in the lab, loopback is right.
 */
export async function checkMigrationAddress(source: AgentClient, target: AgentClient): Promise<void> {
  const { addresses } = await source.call('net.resolve', { name: target.host.address });
  if (!addresses.length) {
    throw new FerryError('UNREACHABLE', `Host "${source.host.name}" cannot resolve "${target.host.address}", the migration address of "${target.host.name}"`, {
      hint: `set the address of "${target.host.name}" in the inventory to an IP address, or fix name resolution on "${source.host.name}"`,
    });
  }
  const sourceIsLocal = isLoopback(source.host.address);
  const loopback = addresses.filter(isLoopback);
  if (!sourceIsLocal && loopback.length) {
    throw new FerryError(
      'UNREACHABLE',
      `"${target.host.address}", the migration address of "${target.host.name}", resolves to ${loopback.join(', ')} on "${source.host.name}": the source would connect to itself`,
      {
        hint: `set the address of "${target.host.name}" in the inventory to the IP the hosts share, or fix /etc/hosts on "${source.host.name}"`,
      },
    );
  }
}
