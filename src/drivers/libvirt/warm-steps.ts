/**
 * A warm move of a libvirt domain. The pre-copy and the catch-up passes
 * (src/migrate/warm.ts, drivers/block-passes.ts) run on the domain's QEMU
 * through libvirt's monitor passthrough, into the target's images served
 * over NBD. libvirt has no hook at its own switch-over pause where ferry
 * could run the last pass, so the cut-over pauses the domain itself: the
 * last pass copies disks that no longer change, and libvirt then migrates
 * the paused domain without copying storage (the target's images are
 * already identical) and ferry resumes it there. The pause covers the
 * last pass and the RAM.
 *
 * Who owns the domain: the source until `virsh migrate` has made it run
 * (paused) on the target, as in a live move; libvirt never has it active
 * on both. Before that, a failure resumes it on the source and keeps the
 * pre-copied images on the target for the next run.
 */
import { liveAgent, withLiveAgent } from '../../hosts/live-agent.js';
import { FerryError, messageOf } from '../../util/errors.js';
import { attachTarget, openReceiver, clearLeftovers, detachTarget, passDisks, runPass, type PassDisk } from '../block-passes.js';
import { crossesToTarget, type BlockMonitor, type DiskPlan, type Settlement, type ShutdownOptions, type VmInfo, type WarmSteps } from '../driver.js';
import { domainMonitor, domainState, endMigrationJob, sourceAfterAbort, stateAfterJob } from './domains.js';
import { LibvirtLiveSteps } from './live-steps.js';

interface QueryBlock {
  device: string;
  qdev?: string;
  inserted?: { file: string; 'node-name'?: string };
}

export class LibvirtWarmSteps extends LibvirtLiveSteps implements WarmSteps {
  private nodes = new Map<string, string>();
  /** The target's NBD receiver the catch-up and last passes write into. */
  private receiver?: { id: string; port: number };
  /** ferry paused the domain on the source (the cut-over began). */
  private suspended = false;

  monitor(): BlockMonitor {
    // Through whichever source agent the move has now (settling may have started a new one).
    return domainMonitor(() => this.source, this.ctx.vmName);
  }

  diskNodes(): Map<string, string> {
    return this.nodes;
  }

  /**
   * --reboot: libvirt ends a domain's QEMU when its guest powers off, and
   * with it the last pass; so the guest is stopped where it is (--force-off),
   * its disks as a power cut would leave them, and boots afresh on the target.
   */
  async powerOff(options: ShutdownOptions): Promise<void> {
    if (!options.forceOff) {
      throw new FerryError('USAGE', `Domain "${this.ctx.vmName}" cannot power off and still give ferry its last pass: libvirt ends its QEMU when the guest powers off`, {
        hint: 'add --force-off: the guest is stopped where it is, the last pass runs, and it boots afresh on the target (the pre-copy made so far is kept)',
      });
    }
    await this.source.call('libvirt.holdSuspended', { id: this.ctx.journal.id, domain: this.ctx.vmName });
    this.ctx.journal.record('source-paused', { host: this.source.host.name });
  }

  async powerOn(): Promise<void> {
    const { id } = this.ctx.journal;
    const domain = this.ctx.vmName;
    // The agent that held the domain suspended may have gone, its hold with it: then a new one resumes it.
    this.source = await withLiveAgent(this.source.host, this.source, async (agent) => {
      await agent.call('libvirt.releaseSuspended', { id });
      await agent.call('libvirt.resume', { domain });
    });
    this.ctx.journal.record('source-resumed', {});
  }

  async releaseSource(): Promise<void> {
    await this.source.call('libvirt.releaseSuspended', { id: this.ctx.journal.id });
  }

  override async describe(): Promise<VmInfo> {
    const vm = await super.describe();
    if (vm.state === 'running' || vm.state === 'paused') this.nodes = await formatNodes(this.monitor(), vm);
    return vm;
  }

  private passDisks(): PassDisk[] {
    return passDisks(this.plans, this.nodes);
  }

  /** The incoming side: the mapped XMLs (as a live move), and the pre-copied images served again for the catch-up. */
  override async prepareIncoming(plans: readonly DiskPlan[]): Promise<void> {
    await super.prepareIncoming(plans);
    const { target } = this;
    // The receiver lives with the target agent's connection: it closes if the controller goes away.
    this.receiver = await openReceiver(target, this.plans);
    this.ctx.journal.record('receiver', { host: target.host.name, port: this.receiver.port });
  }

  override async copyDisks(): Promise<void> {
    await attachTarget(this.monitor(), this.passDisks(), { host: this.target.host.address, port: this.receiver!.port });
    this.ctx.journal.record('mirror-ready', { warm: true });
  }

  override async copyMemory(): Promise<void> {
    // libvirt moves the RAM of the paused domain at the switch-over: nothing crosses before.
  }

  /**
   * The cut-over: pause, last pass, then libvirt moves the paused domain
   * and ferry resumes it on the target. The commit point is libvirt's
   * migration ending with the domain on the target.
   */
  override async switchOver(): Promise<void> {
    const { source, target, ctx } = this;
    const monitor = this.monitor();
    const disks = this.passDisks();
    const t0 = performance.now();
    await source.call('libvirt.migrate.suspend', { id: ctx.journal.id, domain: ctx.vmName });
    this.suspended = true;
    ctx.journal.record('source-suspended', { host: source.host.name });
    const last = await runPass(monitor, disks, new Map(disks.map((d) => [d.device, 'changes'])), { signal: ctx.signal });
    this.stats.lastPassBytes = Object.values(last.bytes).reduce((a, b) => a + b, 0);
    ctx.journal.record('final-pass', { bytes: this.stats.lastPassBytes, ms: last.ms, since_stop_ms: Math.round(performance.now() - t0) });
    await detachTarget(monitor, disks);
    await this.closeReceiver();
    // The disks are identical on both hosts now; libvirt would call a move without copying them
    // unsafe (it cannot know that), so it is told to go on.
    await this.startMigration(['--unsafe']);
    const { end } = await source.call('libvirt.migrate.wait', { id: ctx.journal.id, waitMs: 600_000 });
    if (!end || end.exitCode !== 0) {
      throw new FerryError('MIGRATION_FAILED', `libvirt's migration failed: ${end?.error ?? 'it did not end'}`, { hint: 'the VM runs on the source again; the pre-copy is kept on the target: retry' });
    }
    const state = await domainState(target, ctx.vmName);
    if (state !== 'paused' && state !== 'running') {
      throw new FerryError('MIGRATION_FAILED', `virsh migrate ended, but domain "${ctx.vmName}" is ${state ?? 'missing'} on "${target.host.name}"`, { hint: 'check "virsh list --all" on both hosts' });
    }
    this.committed = true;
    ctx.journal.record('committed', { host: target.host.name, since_stop_ms: Math.round(performance.now() - t0) });
    await target.call('libvirt.resume', { domain: ctx.vmName });
    // As the controller sees it: from the pause asked to the target running (a round trip on each end).
    this.stats.downtimeMs = Math.round(performance.now() - t0);
    ctx.journal.record('target-resumed', { since_stop_ms: this.stats.downtimeMs });
    const done = await target.call('libvirt.jobInfo', { domain: ctx.vmName, completed: true }).catch(() => undefined);
    this.stats.hypervisorDowntimeMs = done?.downtimeMs;
    this.stats.ramBytes = done?.memoryProcessed ?? 0;
    this.log(`switched over: the domain runs on ${target.host.name} after a pause of ${this.stats.downtimeMs} ms (last pass ${this.stats.lastPassBytes} bytes)`);
  }

  private async closeReceiver(): Promise<void> {
    if (!this.receiver) return;
    await this.target.call('image.receiveEnd', { id: this.receiver.id });
    this.receiver = undefined;
  }

  /**
   * After a failure: a domain libvirt moved (running or paused on the
   * target) stays there and runs; otherwise ferry's nodes and jobs leave the
   * source's QEMU, the domain runs there again, and the target keeps the
   * pre-copied images (no domain is made there before the commit), not
   * what the cut-over claimed (the VM's own files).
   */
  override async settle(): Promise<Settlement> {
    this.source = await liveAgent(this.source.host, this.source);
    this.target = await liveAgent(this.target.host, this.target);
    const { source, target, ctx } = this;
    const name = ctx.vmName;
    if (this.started) await endMigrationJob(source, ctx.journal.id, name);
    await this.closeReceiver().catch(() => (this.receiver = undefined));
    const found = await stateAfterJob(target, name);
    const onTarget = found.state;
    this.target = found.agent;
    if (onTarget === 'running' || onTarget === 'paused') {
      await found.agent.call('libvirt.resume', { domain: name });
      this.committed = true;
      ctx.journal.record('settled', { outcome: 'committed' });
      return { outcome: 'committed', source: 'stopped' };
    }
    await clearLeftovers(this.monitor(), this.passDisks()).catch((e: unknown) => this.log(`could not clear the pre-copy's nodes on ${source.host.name}: ${messageOf(e)}`));
    if (this.suspended) await source.call('libvirt.resume', { domain: name }).catch((e: unknown) => this.log(`could not resume ${name} on ${source.host.name}: ${messageOf(e)}`));
    await this.removeClaimed(target);
    const after = await sourceAfterAbort(source, name, { ranBefore: this.ranBefore });
    this.source = after.agent;
    const sourceState = after.state;
    ctx.journal.record('settled', { outcome: 'aborted', source: sourceState ?? 'gone', kept: this.plans.filter(crossesToTarget).map((p) => p.targetPath) });
    return { outcome: 'aborted', source: sourceState ?? 'gone' };
  }
}

/** Each disk's format node, the one the guest's device writes through (libvirt 9 names them libvirt-N-format). */
async function formatNodes(monitor: BlockMonitor, vm: VmInfo): Promise<Map<string, string>> {
  const blocks = await monitor.execute<QueryBlock[]>('query-block');
  const nodes = new Map<string, string>();
  for (const disk of vm.disks) {
    const block = blocks.find((b) => b.inserted?.file === disk.path);
    const node = block?.inserted?.['node-name'];
    if (node) nodes.set(disk.device, node);
  }
  return nodes;
}
