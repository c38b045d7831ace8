/** The QEMU driver: VMs that are QEMU processes with a QMP monitor, started by hand or by a script. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { ColdSteps, FoundVm, HypervisorDriver, LiveSteps, Recovery, StepContext, VmInfo, WarmSteps } from '../driver.js';
import { listVms } from './inspect.js';
import { QemuColdSteps } from './cold-steps.js';
import { QemuLiveSteps } from './live-steps.js';
import { settleMigration } from './settle.js';
import { coldProgress } from '../cold-journal.js';
import { recoverQemuCold } from './cold-recover.js';
import { isWarm, recoverQemuWarm } from './warm-recover.js';

export const qemuDriver: HypervisorDriver = {
  name: 'qemu',
  // A QEMU VM exists only while its process runs.
  find: async (host: AgentClient, vmName: string): Promise<FoundVm | undefined> => ((await host.call('qemu.list', undefined)).some((p) => p.name === vmName) ? { state: 'running' } : undefined),
  listVms: (host: AgentClient): Promise<VmInfo[]> => listVms(host),
  live: (context: StepContext): LiveSteps => new QemuLiveSteps(context),
  cold: (context: StepContext): ColdSteps => new QemuColdSteps(context),
  warm: (context: StepContext): WarmSteps => new QemuLiveSteps(context, { warm: true }),
  recover: async (id: string, vmName: string, source: AgentClient, target: AgentClient, journal): Promise<Recovery> => {
    if (coldProgress(journal).cold) return recoverQemuCold(vmName, source, target, journal);
    const warm = isWarm(journal) ? await recoverQemuWarm(vmName, source, target, journal) : null;
    const [sourceRecords, targetRecords] = await Promise.all([source.call('migration.records', undefined), target.call('migration.records', undefined)]);
    const found = {
      source: sourceRecords.find((r) => r.id === id && r.role === 'source')?.phase ?? null,
      target: targetRecords.find((r) => r.id === id && r.role === 'target')?.phase ?? null,
    };
    if (found.source === null && found.target === null) {
      if (warm === 'resumed' || warm === 'stopped') return { found: { ...found, source: `warm: ${warm}` }, settlement: { outcome: warm === 'stopped' ? 'committed' : 'aborted', source: warm } };
      return { found: { ...found, source: warm && `warm: ${warm}` } };
    }
    return { found, settlement: await settleMigration(id, source, target) };
  },
};
