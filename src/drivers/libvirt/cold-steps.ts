/**
 * A cold move of a libvirt domain (seed 002's `virsh migrate --offline
 * --persistent`, seed 000's dumpxml and define, with the disks copied too):
 * the domain does not run while its disks are copied; then its definition,
 * with the planned paths, is defined and started on the target, and removed
 * from the source unless kept.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { liveAgent, withLiveAgent } from '../../hosts/live-agent.js';
import { FerryError } from '../../util/errors.js';
import type { ColdSteps, DiskPlan, ShutdownOptions, StepContext, VmInfo } from '../driver.js';
import { definableDomainXml, diskMoves, mapDiskSources, type DiskSecret, type DomainDescription } from './domain-xml.js';
import { copySecrets, removeSecrets } from './secret-copy.js';
import { carryAutostart, describeForMove, domainState, refreshTargetPools, tidyPools } from './domains.js';
import type { Admission } from './host/handlers.js';
import { askAdmission, checkPools, checkSecrets, judgeAdmission } from './target-checks.js';

export class LibvirtColdSteps implements ColdSteps {
  private domain?: DomainDescription;
  private stopped = false;
  /** The source's agent no longer holds the powered-off domain: the controller starts it again itself. */
  private released = false;
  private defined = false;

  constructor(private readonly ctx: StepContext) {}

  private get source(): AgentClient {
    return this.ctx.source;
  }

  private set source(agent: AgentClient) {
    this.ctx.source = agent;
  }

  private get target(): AgentClient {
    return this.ctx.target;
  }

  private set target(agent: AgentClient) {
    this.ctx.target = agent;
  }

  async describe(): Promise<VmInfo> {
    const { vm, domain, found } = await describeForMove(this.source, this.ctx.vmName, this.ctx.journal);
    this.domain = domain;
    this.autostart = found.autostart;
    return vm;
  }

  /** The domain starts when its host boots: carried to the target once it owns it. */
  private autostart = false;

  async checkTarget(vm: VmInfo): Promise<void> {
    const domain = this.domain!;
    const xml = (await this.source.call('libvirt.dumpxml', { domain: vm.name, inactive: true })).xml;
    this.admission = await askAdmission(this.target, domain, xml);
    this.secretsToCopy = judgeAdmission(this.target.host.name, domain, this.admission, { copySecrets: this.ctx.settings.copySecrets });
  }

  /** The secrets the target lacks, defined there before the domain (--copy-secrets); those defined go again if the move fails. */
  private secretsToCopy: DiskSecret[] = [];
  private readonly copiedSecrets: string[] = [];

  private admission?: Admission;

  async checkPlans(plans: readonly DiskPlan[]): Promise<void> {
    checkPools(this.target.host.name, this.source.host.name, plans, this.admission?.pools);
  }

  async sourceDisksDeleted(plans: readonly DiskPlan[]): Promise<void> {
    await tidyPools(this.source, plans, this.log);
  }

  /** A line for the user, kept in the journal too. */
  private readonly log = (message: string): void => {
    this.ctx.listener({ type: 'log', message });
    this.ctx.journal.record('log', { message });
  };

  async stopSource(options: ShutdownOptions): Promise<void> {
    const domain = this.ctx.vmName;
    const id = this.ctx.journal.id;
    // Held before the power-off is asked for: from then on, a lost controller leaves the source's agent to start it again.
    if (!options.final) await this.source.call('libvirt.holdOff', { id, domain, waitMs: options.timeoutMs + 30_000 });
    await this.source.call('libvirt.shutdown', { domain, waitMs: 0 }).catch(async (e: unknown) => {
      // Refused, not lost: nothing was asked of the guest, nothing to start again.
      if (!this.source.closed) await this.releaseSource();
      throw e;
    });
    this.ctx.journal.record('source-stopping', { host: this.source.host.name });
    const { state } = await this.source.call('libvirt.shutdown', { domain, waitMs: options.timeoutMs, request: false });
    this.stopped = state === 'shut off';
    this.ctx.journal.record('source-shut-down', { state });
    if (state === 'shut off') return;
    if (!options.forceOff) {
      // It runs on, here: nothing for the source's agent to start again.
      await this.releaseSource();
      throw new FerryError('VM_RUNNING', `Domain "${domain}" on "${this.source.host.name}" did not power off within ${options.timeoutMs / 1000} s (it is ${state})`, {
        hint: 'shut it down from inside the guest, give it longer with --shutdown-timeout, or pass --force-off to cut its power',
      });
    }
    await this.source.call('libvirt.destroy', { domain, graceful: true });
    this.stopped = true;
    this.ctx.journal.record('source-forced-off', {});
  }

  async startSource(): Promise<void> {
    this.source = await liveAgent(this.source.host, this.source);
    const domain = this.ctx.vmName;
    if (this.released) {
      if (this.stopped) await this.source.call('libvirt.start', { domain });
      return;
    }
    const { by, state } = await this.source.call('libvirt.settleOff', { id: this.ctx.journal.id, domain });
    this.ctx.journal.record('source-started', { by, state });
    if (state !== 'running') {
      throw new FerryError('VM_NOT_RUNNING', `Domain "${domain}" was powered off on "${this.source.host.name}" and is ${state ?? 'gone'} there now`, {
        hint: `start it there: virsh start ${domain}`,
      });
    }
  }

  async releaseSource(): Promise<void> {
    await this.source.call('libvirt.releaseOff', { id: this.ctx.journal.id });
    this.released = true;
  }

  async defineTarget(plans: readonly DiskPlan[]): Promise<void> {
    const inactive = (await this.source.call('libvirt.dumpxml', { domain: this.ctx.vmName, inactive: true, migratable: true })).xml;
    this.ctx.journal.record('source-definition', { host: this.source.host.name, xml: inactive });
    const xml = mapDiskSources(definableDomainXml(inactive), diskMoves(plans));
    await refreshTargetPools(this.target, plans, this.ctx.journal);
    if (this.ctx.settings.copySecrets && !this.admission) {
      // A warm --reboot checked the target through its warm steps: the secrets the target lacks are asked here.
      const { secrets } = await this.target.call('libvirt.admission', { domain: this.ctx.vmName, secrets: true });
      this.secretsToCopy = checkSecrets(this.target.host.name, this.domain!, secrets ?? [], true);
    }
    await copySecrets(this.source, this.target, this.secretsToCopy, this.copiedSecrets, this.ctx.journal, this.log);
    await this.target.call('libvirt.define', { xml });
    this.defined = true;
    this.ctx.journal.record('target-defined', { host: this.target.host.name });
  }

  async undefineTarget(): Promise<void> {
    // A rollback: the agent that defined it may be the one lost.
    const domain = this.ctx.vmName;
    if (this.defined) {
      this.target = await withLiveAgent(this.target.host, this.target, undefineIfDefined(domain));
    } else if (this.copiedSecrets.length) this.target = await liveAgent(this.target.host, this.target);
    await removeSecrets(this.target, this.copiedSecrets, this.log);
  }

  async undefineSource(): Promise<void> {
    const domain = this.ctx.vmName;
    if (!this.ctx.settings.keepSourceDefinition) {
      // After the commit: a lost source agent must not leave the older copy defined there, to be started by mistake.
      this.source = await withLiveAgent(this.source.host, this.source, undefineIfDefined(domain));
      this.ctx.journal.record('source-undefined', { host: this.source.host.name });
    }
    if (this.autostart) await carryAutostart(this.source, this.target, domain, this.log);
  }

  async startTarget(): Promise<void> {
    await this.target.call('libvirt.start', { domain: this.ctx.vmName });
    this.ctx.journal.record('target-started', { host: this.target.host.name });
  }

  async targetState(): Promise<string> {
    return (await domainState(this.target, this.ctx.vmName)) ?? 'not defined';
  }
}

/** Undefines `domain` on the agent's host if it is defined there: a call that may be made again after a lost agent. */
function undefineIfDefined(domain: string): (agent: AgentClient) => Promise<void> {
  return async (agent) => {
    if ((await domainState(agent, domain)) !== null) await agent.call('libvirt.undefine', { domain });
  };
}
