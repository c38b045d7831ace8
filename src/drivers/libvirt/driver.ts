/** The libvirt driver: domains a libvirtd manages, running or shut off. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { HypervisorDriver, LiveSteps, StepContext, VmInfo } from '../driver.js';
import { libvirtAvailable, listDomains } from './domains.js';
import { LibvirtLiveSteps } from './live-steps.js';

export const libvirtDriver: HypervisorDriver = {
  name: 'libvirt',
  has: async (host: AgentClient, vmName: string): Promise<boolean> => (await libvirtAvailable(host)) && (await host.call('libvirt.domains', {})).some((d) => d.name === vmName),
  listVms: (host: AgentClient): Promise<VmInfo[]> => listDomains(host),
  live: (context: StepContext): LiveSteps => new LibvirtLiveSteps(context),
};
