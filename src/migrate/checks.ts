/**
 * Checks that hold whatever the hypervisor: two distinct machines, room for
 * the VM's memory on the target, the files it boots from present there. A
 * driver adds what only it can see (versions, CPU, networks).
 */
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { formatMiB, MiB } from '../util/units.js';
import type { VmInfo } from '../drivers/driver.js';

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

export async function checkAuxFiles(vm: VmInfo, target: AgentClient): Promise<void> {
  for (const f of vm.auxFiles) {
    const st = await target.call('file.stat', { path: f });
    if (!st.exists) {
      throw new FerryError('NOT_FOUND', `VM "${vm.name}" boots from "${f}", which does not exist on "${target.host.name}"`, {
        hint: `copy it there at the same path (e.g. "ferry sync ${f} ${target.host.name}:${f}")`,
      });
    }
  }
}
