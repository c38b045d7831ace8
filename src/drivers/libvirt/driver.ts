/** The libvirt driver: domains a libvirtd manages, running or shut off. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { HypervisorDriver, LiveSteps, ColdSteps, Recovery, StepContext, VmInfo, WarmSteps } from '../driver.js';
import { listDomains } from './domains.js';
import { LibvirtLiveSteps } from './live-steps.js';
import { LibvirtColdSteps } from './cold-steps.js';
import { recoverLibvirtMigration } from './recover.js';
import { LibvirtWarmSteps } from './warm-steps.js';

export const libvirtDriver: HypervisorDriver = {
  name: 'libvirt',
  // No libvirtd there, or no such domain: either way not libvirt's VM.
  stateOf: async (host: AgentClient, vmName: string): Promise<string | undefined> => (await host.call('libvirt.state', { domain: vmName }).catch(() => undefined))?.state,
  listVms: (host: AgentClient): Promise<VmInfo[]> => listDomains(host),
  cold: (context: StepContext): ColdSteps => new LibvirtColdSteps(context),
  live: (context: StepContext): LiveSteps => new LibvirtLiveSteps(context),
  warm: (context: StepContext): WarmSteps => new LibvirtWarmSteps(context),
  recover: (id, vmName, source, target, journal): Promise<Recovery> => recoverLibvirtMigration(vmName, source, target, journal),
};
