/** The QEMU driver: VMs that are QEMU processes with a QMP monitor, started by hand or by a script. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { HypervisorDriver, LiveSteps, StepContext, VmInfo } from '../driver.js';
import { listVms } from './inspect.js';
import { QemuLiveSteps } from './live-steps.js';

export const qemuDriver: HypervisorDriver = {
  name: 'qemu',
  has: async (host: AgentClient, vmName: string): Promise<boolean> => (await host.call('qemu.list', undefined)).some((p) => p.name === vmName),
  listVms: (host: AgentClient): Promise<VmInfo[]> => listVms(host),
  live: (context: StepContext): LiveSteps => new QemuLiveSteps(context),
};
