/**
 * Live migration of a libvirt domain with local disks, through libvirt
 * itself: the source libvirtd drives a peer-to-peer migration to the target
 * libvirtd (`virsh migrate --live --p2p --copy-storage-all`), storage
 * mirrored with synchronous writes. ferry adds what virsh leaves to the
 * user: the checks (distinct host UUIDs, the CPU, networks, paths, space),
 * target images made with the right format, size and backing file, the disk
 * map applied to both the running and the persistent XML, progress, and one
 * owner after any failure.
 *
 * libvirt owns the commit point: the domain runs on the target once its
 * libvirtd has finished the incoming migration, and never on both sides.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { liveAgent } from '../../hosts/live-agent.js';
import { FerryError, messageOf } from '../../util/errors.js';
import type { DiskPlan, FoundVm, LiveStats, LiveSteps, Settlement, StepContext, VmInfo } from '../driver.js';
import { ConvergenceWatch } from '../convergence.js';
import { removeClaimedLvs } from '../target-lvs.js';
import { diskMoves, mapDiskSources, parseDomainXml, staysVolume, type DiskSecret, type DomainDescription } from './domain-xml.js';
import { copySecrets, removeSecrets } from './secret-copy.js';
import {
  carryAutostart,
  describeForMove,
  domainRunning,
  domainState,
  endMigrationJob,
  libvirtUri,
  refreshTargetPools,
  refuseLivePassthrough,
  sameHostUuidError,
  sourceAfterAbort,
  stateAfterJob,
  tidyPools,
} from './domains.js';
import { checkControlTransport } from './control-transport.js';
import { diskProgress, ramProgress } from './job-progress.js';
import { askAdmission, checkPools, judgeAdmission, type AdmissionOptions } from './target-checks.js';
import type { Admission, FoundDomain, XmlVariant } from './host/handlers.js';
import type { DomainJobInfo } from './virsh-output.js';

/** The source's XMLs a live move reads: the live one (its CPU), the migratable one (its networks, the XML sent), the definition. */
const XML_VARIANTS: readonly XmlVariant[] = [{}, { migratable: true }, { inactive: true, migratable: true }];

/**
 * The domain on the host, with what a live move of it reads there (its XMLs,
 * the host's UUID and CPU) asked in the same virsh call; undefined when
 * libvirt has no such domain. A libvirtd that cannot be reached throws.
 */
export async function findForMove(host: AgentClient, name: string): Promise<FoundVm | undefined> {
  const answer = await host.call('libvirt.domain', { domain: name, xmls: XML_VARIANTS, host: true });
  return answer && { state: answer.state, details: answer };
}

/** The XMLs of libvirt.domain's answer, named (asked as XML_VARIANTS lists them). */
function sourceXmls(found: FoundDomain): { live: string; migratable: string; definition: string } {
  const [live, migratable, definition] = found.xmls!;
  return { live: live!, migratable: migratable!, definition: definition! };
}

/** Each poll runs virsh on the source: often enough for the view, seldom enough to leave the CPU to the migration. */
const POLL_MS = 500;

export class LibvirtLiveSteps implements LiveSteps {
  readonly stats: LiveStats = { ramBytes: 0, diskBytes: 0 };
  committed = false;
  protected source: AgentClient;
  protected target: AgentClient;
  protected domain?: DomainDescription;
  /** The domain ran (not paused) when the move began: a source left paused by an aborted job is resumed. */
  protected ranBefore = false;
  protected plans: DiskPlan[] = [];
  /** Files made on the target for this migration: removed if the domain does not end up there. */
  private readonly created: string[] = [];
  /** LVs made on the target for it: likewise deactivated and removed. */
  private readonly createdLvs: Array<{ vg: string; lv: string }> = [];
  /** virsh migrate was started: a failure aborts its job. */
  protected started = false;
  private memoryStarted = false;
  private lastJob?: DomainJobInfo;

  /** findForMove's answer, taken by describe: the domain as the move found it. */
  private found?: FoundDomain;

  constructor(
    protected readonly ctx: StepContext,
    found?: FoundVm,
  ) {
    this.source = ctx.source;
    this.target = ctx.target;
    this.found = found?.details as FoundDomain | undefined;
    this.convergence = new ConvergenceWatch(ctx);
  }

  private readonly convergence: ConvergenceWatch;

  get agents(): AgentClient[] {
    return [this.source, this.target];
  }

  protected log(message: string): void {
    this.ctx.listener({ type: 'log', message });
    this.ctx.journal.record('log', { message });
  }

  /** The source's host UUID, asked with the description: libvirt refuses to migrate between two libvirtds with the same. */
  private sourceUuid?: string;

  /** The domain starts when its host boots: carried to the target once it owns it. */
  private autostart = false;

  async describe(): Promise<VmInfo> {
    const answer = this.found;
    this.found = undefined;
    // Found moments before: the target is asked while the source's images are read.
    if (answer) this.askTarget(answer);
    // The XMLs the check and the preparation read, and the host's UUID and CPU, come with the description.
    const { vm, domain, found } = await describeForMove(this.source, this.ctx.vmName, this.ctx.journal, { xmls: XML_VARIANTS, host: true, answer });
    this.sourceXml = sourceXmls(found);
    this.sourceUuid = found.host?.uuid;
    this.autostart = found.autostart;
    this.domain = domain;
    this.ranBefore = vm.state === 'running';
    this.askTarget(found);
    return vm;
  }

  /** What the target's libvirtd says of the domain (its admission), asked once. */
  private admission?: Promise<{ admission: Admission; options: AdmissionOptions }>;

  private askTarget(found: FoundDomain): void {
    if (this.admission) return;
    const { live, migratable } = sourceXmls(found);
    // The live XML has the CPU the guest runs with; the migratable one names a network as the user wrote it, the live one as the bridge it resolved to.
    const options = { networksOf: parseDomainXml(migratable), sourceHostCpu: found.host?.cpuXml, peerUri: libvirtUri(this.target.host) };
    this.admission = askAdmission(this.target, found.description, live, options).then((admission) => ({ admission, options }));
    // Judged by the check; a describe that fails first leaves it unread.
    this.admission.catch(() => undefined);
  }

  async checkTarget(): Promise<void> {
    const { source, target } = this;
    const domain = this.domain!;
    refuseLivePassthrough(domain, source.host.name);
    const { admission, options } = await this.admission!;
    this.secretsToCopy = judgeAdmission(target.host.name, domain, admission, { ...options, copySecrets: this.ctx.settings.copySecrets });
    if (this.sourceUuid === admission.hostUuid) throw sameHostUuidError(source.host.name, target.host.name, admission.hostUuid);
    await checkControlTransport(libvirtUri(target.host), target.host.name, admission.tcpAuth, async (name) => (await source.call('net.resolve', { name })).addresses);
    this.log(`libvirt on ${target.host.name} accepts the domain (host UUIDs differ${domain.cpu ? ', CPU accepted' : ''})`);
  }

  /** The secrets the target lacks, which the preparation defines there (--copy-secrets). */
  private secretsToCopy: DiskSecret[] = [];
  /** Those it defined: undefined again if the domain does not end up there. */
  private readonly copiedSecrets: string[] = [];

  /** libvirt refuses to mirror a read-only disk: ferry copied each before the move. */
  readonly leavesReadOnlyDisks = true;

  /** The disks libvirt copies: neither shared nor read-only. */
  private mirrored(): DiskPlan[] {
    return this.plans.filter((p) => !p.shared && !p.disk.readOnly);
  }

  async checkPlans(plans: readonly DiskPlan[]): Promise<void> {
    checkPools(this.target.host.name, this.source.host.name, plans, (await this.admission!).admission.pools);
  }

  async sourceDisksDeleted(plans: readonly DiskPlan[]): Promise<void> {
    await tidyPools(this.source, plans, (m) => this.log(m));
  }

  async beginTarget(): Promise<void> {
    // libvirt makes the incoming domain itself and removes it on failure; ferry only tracks its images.
  }

  async claimTargetFiles(paths: string[], lvs: ReadonlyArray<{ vg: string; lv: string }> = []): Promise<void> {
    this.created.push(...paths);
    this.createdLvs.push(...lvs);
    this.ctx.journal.record('claimed', { host: this.target.host.name, files: paths, lvs });
  }

  /** The source's XMLs, read with the description: the check reads them, and the preparation again. */
  private sourceXml?: ReturnType<typeof sourceXmls>;

  private xml?: { live: string; persistent: string };

  async prepareIncoming(plans: readonly DiskPlan[]): Promise<void> {
    this.plans = [...plans];
    const { migratable: live, definition: inactive } = this.sourceXml!;
    // The definition the source had: what --keep-source-definition keeps, and what a user may define again.
    this.ctx.journal.record('source-definition', { host: this.source.host.name, xml: inactive });
    const moves = diskMoves(this.plans);
    this.xml = moves.length ? { live: mapDiskSources(live, moves), persistent: mapDiskSources(inactive, moves) } : undefined;
    await refreshTargetPools(this.target, this.plans, this.ctx.journal);
    await copySecrets(this.source, this.target, this.secretsToCopy, this.copiedSecrets, this.ctx.journal, (m) => this.log(m));
  }

  async copyDisks(): Promise<void> {
    const { settings } = this.ctx;
    const disks = this.mirrored().map((p) => p.disk.device);
    await this.startMigration(
      [
        ...(disks.length ? this.storageArgs(disks) : []),
        // libvirt judges shared storage by the filesystem's type and refuses one it does not know
        // (a bind mount, a FUSE mount); ferry has seen the very file from both hosts.
        ...(this.plans.some((p) => p.shared) ? ['--unsafe'] : []),
      ],
      settings.maxDowntimeMs ?? 50,
    );
    this.log(
      `libvirt migrates ${this.ctx.vmName} peer to peer to ${this.target.host.name}, ${disks.length ? `disks ${disks.join(', ')} mirrored${settings.mirrorMode === 'background' ? '' : ' with synchronous writes'}` : 'no disk copied (shared storage)'}`,
    );
    // The disks are mirrored first; RAM starts once every mirror is in step.
    await this.watch('mirror', () => this.memoryStarted);
  }

  /**
   * Starts `virsh migrate --live --p2p --persistent` on the source's agent
   * with the disk map applied to both XMLs; `args` add how the disks go.
   */
  protected async startMigration(args: string[], maxDowntimeMs?: number): Promise<void> {
    const { source, target, ctx } = this;
    const { settings } = ctx;
    const all = [
      '--live',
      '--p2p',
      '--persistent',
      ...(settings.keepSourceDefinition ? [] : ['--undefinesource']),
      ...args,
      '--migrateuri',
      `tcp://${target.host.address}`,
      ...(settings.bandwidthBytes ? ['--bandwidth', String(Math.max(1, Math.floor(settings.bandwidthBytes / 2 ** 20)))] : []),
      ...(settings.autoConverge ? ['--auto-converge'] : []),
    ];
    await source.call('libvirt.migrate.start', {
      id: ctx.journal.id,
      domain: ctx.vmName,
      destUri: libvirtUri(target.host),
      args: all,
      xml: this.xml?.live,
      persistentXml: this.xml?.persistent,
      maxDowntimeMs,
    });
    this.started = true;
    ctx.journal.record('libvirt-migrate', { args: all, dest: libvirtUri(target.host) });
  }

  /** libvirt copies the disks that are not shared, mirrored until the switch-over. */
  private storageArgs(disks: string[]): string[] {
    const { settings } = this.ctx;
    const address = this.target.host.address;
    return [
      // Into images ferry made (they read as zeros), only what the source's top holds needs to cross: its
      // data, or just the top when the base is on both hosts. Into a device that exists, everything. A disk
      // that stays a pool volume too: libvirt takes a volume for missing in an incremental copy, and refuses.
      this.mirrored().every((p) => p.create && !staysVolume(p)) ? '--copy-storage-inc' : '--copy-storage-all',
      ...(settings.mirrorMode === 'background' ? [] : ['--copy-storage-synchronous-writes']),
      '--migrate-disks',
      disks.join(','),
      '--disks-uri',
      `tcp://${address}`,
    ];
  }

  async copyMemory(): Promise<void> {
    await this.watch('memory', () => false);
  }

  /** Polls libvirt's job until `done` or until virsh ends. */
  private async watch(phase: string, done: () => boolean): Promise<void> {
    const { source, ctx } = this;
    for (;;) {
      const { running, job } = await source.call('libvirt.migrate.watch', { id: ctx.journal.id, waitMs: POLL_MS });
      if (!running) return;
      if (job && job.type !== 'none') {
        this.lastJob = job;
        if ((job.memoryProcessed ?? 0) > 0) this.memoryStarted = true;
        const ram = ramProgress(job);
        ctx.listener({
          type: 'progress',
          progress: {
            phase: this.memoryStarted ? 'memory' : phase,
            disks: diskProgress(job, this.mirrored()),
            ram,
            etaSeconds: job.timeRemainingMs ? job.timeRemainingMs / 1000 : undefined,
            ramSize: this.domain?.memoryBytes,
            bandwidthLimit: ctx.settings.bandwidthBytes,
          },
        });
        this.convergence.observe(ram);
      }
      if (ctx.signal.aborted) throw new FerryError('ABORTED', 'Migration aborted', { hint: 'the VM keeps running on the source' });
      if (done()) return;
    }
  }

  async switchOver(): Promise<void> {
    const { source, target, ctx } = this;
    const { end } = await source.call('libvirt.migrate.wait', { id: ctx.journal.id, waitMs: 600_000 });
    if (!end || end.exitCode !== 0) {
      throw new FerryError('MIGRATION_FAILED', `libvirt's migration failed: ${end?.error ?? 'it did not end'}`, { hint: 'the VM keeps running on the source; fix the cause and retry' });
    }
    // Asked at once: the source's state is the finish's question; the target's job statistics come with its state.
    this.sourceStateAfter = domainState(source, ctx.vmName);
    this.sourceStateAfter.catch(() => undefined);
    // Asked without hiding a lost agent (domainRunning would say "not running"): settling then asks a new one.
    const arrived = await target.call('libvirt.state', { domain: ctx.vmName, completedJob: true });
    if (arrived?.state !== 'running') {
      throw new FerryError('MIGRATION_FAILED', `virsh migrate ended, but domain "${ctx.vmName}" does not run on "${target.host.name}"`, { hint: 'check "virsh list --all" on both hosts' });
    }
    this.committed = true;
    ctx.journal.record('committed', { host: target.host.name });
    const done = arrived.completedJob;
    this.stats.downtimeMs = done?.downtimeMs;
    this.stats.hypervisorDowntimeMs = done?.downtimeMs;
    this.stats.ramBytes = done?.memoryProcessed ?? this.lastJob?.memoryProcessed ?? 0;
    // The target's completed statistics may leave the disks out: the source's last figure is then the one.
    this.stats.diskBytes = Math.max(done?.diskProcessed ?? 0, this.lastJob?.diskProcessed ?? 0);
    this.log(`switched over: the domain runs on ${target.host.name}`);
  }

  /** The source's state once virsh migrate ended (libvirt's job, its confirmation on the source included, is over). */
  private sourceStateAfter?: Promise<string | null>;

  async finish(): Promise<void> {
    const { source, ctx } = this;
    if ((await (this.sourceStateAfter ?? domainState(source, ctx.vmName))) === 'running') {
      throw new FerryError('MIGRATION_FAILED', `Domain "${ctx.vmName}" still runs on "${source.host.name}" after the migration`, { hint: 'check "virsh list" on both hosts' });
    }
    this.log(this.ctx.settings.keepSourceDefinition ? `domain kept defined, shut off, on ${source.host.name}` : `domain undefined on ${source.host.name}; its definition is in the journal`);
    if (this.autostart) await carryAutostart(source, this.target, ctx.vmName, (m) => this.log(m));
  }

  /** The domain is not on the target: what ferry claimed there goes, unless something holds it open. */
  protected async removeClaimed(target: AgentClient): Promise<void> {
    for (const path of this.created) {
      const holders = await target.call('process.holding', { path }).catch(() => ({ pids: [] as number[] }));
      if (holders.pids.length) continue;
      await target.call('file.remove', { path }).catch((e: unknown) => this.log(`could not remove ${path} on ${target.host.name}: ${messageOf(e)}`));
    }
    await removeClaimedLvs(target, this.createdLvs, (m) => this.log(m));
    await removeSecrets(target, this.copiedSecrets, (m) => this.log(m));
    if (this.created.length)
      await tidyPools(
        target,
        this.plans.filter((p) => staysVolume(p) && !p.shared),
        (m) => this.log(m),
      );
  }

  async settle(): Promise<Settlement> {
    const source = await liveAgent(this.source.host, this.source);
    this.source = source;
    const name = this.ctx.vmName;
    if (this.started) await endMigrationJob(source, this.ctx.journal.id, name);
    const onTarget = await stateAfterJob(this.target, name);
    const target = (this.target = onTarget.agent);
    if (onTarget.state === 'running' || onTarget.state === 'paused') {
      // libvirt moved it: the target owns it now, and runs it.
      if (onTarget.state === 'paused') await target.call('libvirt.resume', { domain: name });
      this.committed = true;
      this.ctx.journal.record('settled', { outcome: 'committed' });
      return { outcome: 'committed', source: 'stopped' };
    }
    await this.removeClaimed(target);
    // The source owned the domain throughout: whatever became of it there, nobody took it over.
    const onSource = await sourceAfterAbort(source, name, { ranBefore: this.ranBefore });
    this.source = onSource.agent;
    this.ctx.journal.record('settled', { outcome: 'aborted', source: onSource.state ?? 'gone' });
    return { outcome: 'aborted', source: onSource.state ?? 'gone' };
  }

  runsOn(agent: AgentClient): Promise<boolean> {
    return domainRunning(agent, this.ctx.vmName);
  }

  async existsOn(agent: AgentClient): Promise<boolean> {
    // A domain whose QEMU exited is shut off (crashed): it no longer exists as a running VM.
    const state = (await agent.call('libvirt.state', { domain: this.ctx.vmName }))?.state;
    return state !== undefined && state !== 'shut off';
  }

  hypervisorLog(): string {
    // libvirt's QEMU driver keeps each domain's QEMU output there (its default log_dir).
    return `/var/log/libvirt/qemu/${this.ctx.vmName}.log`;
  }
}
