/** The libvirt driver: domains a libvirtd manages, running or shut off. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { FoundVm, HypervisorDriver, LiveSteps, ColdSteps, Recovery, StepContext, VmInfo, WarmSteps } from '../driver.js';
import { listDomains } from './domains.js';
import { findForMove, LibvirtLiveSteps } from './live-steps.js';
import { LibvirtColdSteps } from './cold-steps.js';
import { recoverLibvirtMigration } from './recover.js';
import { LibvirtWarmSteps } from './warm-steps.js';

export const libvirtDriver: HypervisorDriver = {
  name: 'libvirt',
  find: (host: AgentClient, vmName: string): Promise<FoundVm | undefined> => findForMove(host, vmName),
  listVms: (host: AgentClient): Promise<VmInfo[]> => listDomains(host),
  cold: (context: StepContext): ColdSteps => new LibvirtColdSteps(context),
  live: (context: StepContext, found?: FoundVm): LiveSteps => new LibvirtLiveSteps(context, found),
  warm: (context: StepContext): WarmSteps => new LibvirtWarmSteps(context),
  recover: (id, vmName, source, target, journal): Promise<Recovery> => recoverLibvirtMigration(vmName, source, target, journal),
};
