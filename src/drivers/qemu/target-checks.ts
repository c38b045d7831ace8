/** What a QEMU target must offer a VM moved there, live or cold. */
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import type { VmInfo } from '../driver.js';
import type { ParsedArgv } from './argv.js';
import { guestCpu, missingOnTarget } from './cpu.js';

export async function checkQemuTarget(source: AgentClient, target: AgentClient, parsed: ParsedArgv, vm: VmInfo, options: { sameOrNewer: boolean }): Promise<void> {
  const binary = parsed.binary;
  const there = await target.call('qemu.version', { binary }).catch((e: FerryError) => {
    throw new FerryError('INCOMPATIBLE', `Cannot run "${binary}" on host "${target.host.name}": ${e.message}`, { hint: 'install QEMU on the target' });
  });
  if (options.sameOrNewer && compareVersions(there.version, vm.hypervisorVersion) < 0) {
    throw new FerryError('INCOMPATIBLE', `QEMU on "${target.host.name}" (${there.version}) is older than on "${source.host.name}" (${vm.hypervisorVersion})`, {
      hint: 'a running VM can only move to the same or a newer QEMU: upgrade QEMU on the target, or move it with --mode cold',
    });
  }
  await checkCpu(source, target, parsed, vm.name);
  if ((await target.call('qemu.list', undefined)).some((p) => p.name === vm.name)) {
    throw new FerryError('TARGET_EXISTS', `A VM named "${vm.name}" already runs on "${target.host.name}"`, { hint: 'stop it there, or migrate to another host with --to' });
  }
}

/** The target must give the guest the CPU it has here. */
async function checkCpu(source: AgentClient, target: AgentClient, parsed: ParsedArgv, vmName: string): Promise<void> {
  const cpu = guestCpu(parsed);
  const [here, there] = await Promise.all([cpu.model === 'host' ? source.call('qemu.cpuSupport', { binary: parsed.binary }) : undefined, target.call('qemu.cpuSupport', { binary: parsed.binary })]);
  const missing = missingOnTarget(cpu, there, here?.hostFlags ?? []);
  if (missing.model || missing.flags.length) {
    const what = [missing.model && `CPU model ${missing.model}`, missing.flags.length && `CPU flags ${missing.flags.join(', ')}`].filter(Boolean).join(' and ');
    throw new FerryError('INCOMPATIBLE_CPU', `VM "${vmName}" runs with ${what}, which "${target.host.name}" cannot give it (${cpu.accel})`, {
      hint: 'restart the VM with a CPU model both hosts have (e.g. -cpu with a named model and no extra flags), or choose another target with --to',
    });
  }
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
