/**
 * An offline move of a libvirt domain (seed 002's `virsh migrate --offline
 * --persistent`, seed 000's dumpxml and define, with the disks copied too):
 * the domain does not run while its disks are copied; then its definition,
 * with the planned paths, is defined on the target, and removed from the
 * source unless kept.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import type { DiskPlan, OfflineSteps, StepContext, VmInfo } from '../driver.js';
import { definableDomainXml, mapDiskSources, type DomainDescription } from './domain-xml.js';
import { findDomain } from './domains.js';
import { checkCpu, checkNameFree, checkNetworks } from './target-checks.js';

/** How long the guest gets to power off when asked. */
const SHUTDOWN_WAIT_MS = 120_000;

export class LibvirtOfflineSteps implements OfflineSteps {
  private domain?: DomainDescription;
  private stopped = false;
  private defined = false;

  constructor(private readonly ctx: StepContext) {}

  private get source(): AgentClient {
    return this.ctx.source;
  }

  private get target(): AgentClient {
    return this.ctx.target;
  }

  async describe(): Promise<VmInfo> {
    const { vm, domain } = await findDomain(this.source, this.ctx.vmName);
    this.domain = domain;
    this.ctx.journal.record('vm', { driver: 'libvirt', state: vm.state, memory: vm.memoryBytes, disks: vm.disks.map((d) => ({ path: d.path, format: d.format, size: d.virtualSize })) });
    return vm;
  }

  async checkTarget(vm: VmInfo): Promise<void> {
    await checkNameFree(this.target, vm.name);
    const xml = (await this.source.call('libvirt.dumpxml', { domain: vm.name, inactive: true })).xml;
    await checkCpu(this.target, this.domain!, xml);
    await checkNetworks(this.target, this.domain!);
  }

  async stopSource(): Promise<void> {
    const { state } = await this.source.call('libvirt.shutdown', { domain: this.ctx.vmName, waitMs: SHUTDOWN_WAIT_MS });
    this.stopped = true;
    this.ctx.journal.record('source-shut-down', { state });
    if (state !== 'shut off') {
      throw new FerryError('VM_NOT_RUNNING', `Domain "${this.ctx.vmName}" on "${this.source.host.name}" did not power off within ${SHUTDOWN_WAIT_MS / 1000} s (it is ${state})`, {
        hint: `shut it down from inside the guest (or "virsh destroy ${this.ctx.vmName}" if it may be cut off), then run the same command again`,
      });
    }
  }

  async startSource(): Promise<void> {
    if (this.stopped) await this.source.call('libvirt.start', { domain: this.ctx.vmName });
  }

  async defineTarget(plans: readonly DiskPlan[]): Promise<void> {
    const inactive = (await this.source.call('libvirt.dumpxml', { domain: this.ctx.vmName, inactive: true, migratable: true })).xml;
    this.ctx.journal.record('source-definition', { host: this.source.host.name, xml: inactive });
    const moves = plans
      .filter((p) => !p.shared && p.targetPath !== p.disk.path)
      .map((p) => ({ from: p.disk.path, to: p.targetPath, kind: p.targetFormat === 'raw' && !p.create ? ('block' as const) : ('file' as const), format: p.targetFormat }));
    const xml = mapDiskSources(definableDomainXml(inactive), moves);
    await this.target.call('libvirt.define', { xml });
    this.defined = true;
    this.ctx.journal.record('target-defined', { host: this.target.host.name });
  }

  async undefineTarget(): Promise<void> {
    if (this.defined) await this.target.call('libvirt.undefine', { domain: this.ctx.vmName });
  }

  async undefineSource(): Promise<void> {
    if (this.ctx.settings.keepSourceDefinition) return;
    await this.source.call('libvirt.undefine', { domain: this.ctx.vmName });
    this.ctx.journal.record('source-undefined', { host: this.source.host.name });
  }

  async startTarget(): Promise<void> {
    await this.target.call('libvirt.start', { domain: this.ctx.vmName });
    this.ctx.journal.record('target-started', { host: this.target.host.name });
  }
}
