/** The libvirt driver: domains a libvirtd manages, running or shut off. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { HypervisorDriver, LiveSteps, OfflineSteps, Recovery, StepContext, VmInfo } from '../driver.js';
import { libvirtAvailable, listDomains } from './domains.js';
import { LibvirtLiveSteps } from './live-steps.js';
import { LibvirtOfflineSteps } from './offline-steps.js';
import { recoverLibvirtMigration } from './recover.js';

export const libvirtDriver: HypervisorDriver = {
  name: 'libvirt',
  has: async (host: AgentClient, vmName: string): Promise<boolean> => (await libvirtAvailable(host)) && (await host.call('libvirt.domain', { domain: vmName })) !== undefined,
  stateOf: async (host: AgentClient, vmName: string): Promise<string | undefined> => ((await libvirtAvailable(host)) ? (await host.call('libvirt.domain', { domain: vmName }))?.state : undefined),
  listVms: (host: AgentClient): Promise<VmInfo[]> => listDomains(host),
  offline: (context: StepContext): OfflineSteps => new LibvirtOfflineSteps(context),
  live: (context: StepContext): LiveSteps => new LibvirtLiveSteps(context),
  recover: (id, vmName, source, target, journal): Promise<Recovery> => recoverLibvirtMigration(vmName, source, target, journal),
};
