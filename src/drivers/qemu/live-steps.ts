/**
 * Live migration of a QEMU VM whose disks are on the source's local storage,
 * the sequence libvirt, Proxmox and Nova drive: the target waits with
 * `-incoming defer` and exports its fresh disks over NBD; the source mirrors
 * every disk into them, then migrates RAM with `pause-before-switchover`; at
 * the pause the mirrors are completed (the disks are then identical, the
 * guest being stopped), the switch-over goes on, and the target resumes.
 *
 * These are the QEMU driver's steps; src/migrate/live.ts runs them in order
 * and settles through settle() after any failure: until the commit point,
 * the source keeps running on its untouched disks and what was made on the
 * target is removed.
 */
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import type { AgentClient } from '../../hosts/agent-client.js';
import type { QmpEvent } from '../../qmp/client.js';
import { abortable, sleep } from '../../util/abort.js';
import { FerryError } from '../../util/errors.js';
import { text } from '../../util/text.js';
import { MiB } from '../../util/units.js';
import type { BlockMonitor, DiskPlan, LiveStats, Settlement, ShutdownOptions, StepContext, VmInfo, WarmSteps } from '../driver.js';
import { attachTarget, jobId, nbdNode, passActions, passDisks } from '../block-passes.js';
import type { DiskProgress, RamProgress } from '../progress.js';
import { ConvergenceWatch } from '../convergence.js';
import { accelOf, filesQemuCreates, parseQemuArgv, qemuLogFile, targetArgv, type ParsedArgv } from './argv.js';
import { checkQemuTarget } from './target-checks.js';
import { describeWithQmp, findQemuProcess } from './inspect.js';
import { RemoteQmp } from './remote-qmp.js';
import { liveAgent, withLiveAgent } from '../../hosts/live-agent.js';
import { settleMigration } from './settle.js';
import { runGuestAgain } from './guest-power.js';

/** A disk's plan with the names it gets in the two QEMUs. */
interface MirrorPlan extends DiskPlan {
  sourceNode: string;
  targetNode?: string;
  nbdNode: string;
  jobId: string;
  bytesCopied: number;
}

const POLL_MS = 250;
/** Migration states from the pause on: the switch-over is under way. */
const PAUSED_STATES = ['pre-switchover', 'device', 'completed'];
/** QEMU's own default is 300 ms; ferry aims at a pause of tens of milliseconds. */
export const DEFAULT_MAX_DOWNTIME_MS = 50;

export class QemuLiveSteps implements WarmSteps {
  readonly stats: LiveStats = { ramBytes: 0, diskBytes: 0 };
  /** Set at the commit point, the target's incoming migration completed: from then on the target owns the VM. */
  committed = false;
  /** How a failed migration was settled, once it was. */
  settlement?: Settlement;

  private srcQmp?: RemoteQmp;
  private dstQmp?: RemoteQmp;
  private vm?: VmInfo & { nodes: Map<string, string> };
  private parsed?: ParsedArgv;
  private plans: MirrorPlan[] = [];
  /** Names the migration on both hosts (their records) and in the journal. */
  private readonly id: string;
  /** Proves to the target's beacon that the source's agent asking is this migration's. */
  private readonly token = randomUUID();
  private nbdPort = 0;
  private migrationPort = 0;
  private beaconPort = 0;
  private targetPid = 0;
  private sourceStop?: QmpEvent;
  private resumed?: Promise<QmpEvent>;

  private source: AgentClient;
  private target: AgentClient;

  /**
   * warm: the disks were pre-copied (src/migrate/warm.ts). copyDisks then
   * only connects the source to the incoming side's exports for the
   * flow's catch-up passes, and at the pause the source's guard runs the
   * last pass instead of completing mirrors.
   */
  constructor(
    private readonly ctx: StepContext,
    private readonly options: { warm?: boolean } = {},
  ) {
    this.id = ctx.journal.id;
    this.source = ctx.source;
    this.target = ctx.target;
  }

  private log(message: string): void {
    this.ctx.listener({ type: 'log', message });
    this.ctx.journal.record('log', { message });
  }

  // ---- check -------------------------------------------------------------

  async describe(): Promise<VmInfo> {
    const proc = await findQemuProcess(this.source, this.ctx.vmName);
    this.parsed = parseQemuArgv(proc.argv);
    this.srcQmp = await RemoteQmp.open(this.source, proc.qmpSocket!);
    this.vm = await describeWithQmp(this.srcQmp, proc);
    const vm = this.vm;
    this.ctx.journal.record('vm', { pid: vm.pid, state: vm.state, memory: vm.memoryBytes, disks: vm.disks.map((d) => ({ path: d.path, format: d.format, size: d.virtualSize })) });
    return vm;
  }

  monitor(): BlockMonitor {
    return this.srcQmp!;
  }

  diskNodes(): Map<string, string> {
    return this.vm!.nodes;
  }

  async powerOff(options: ShutdownOptions): Promise<void> {
    const qmp = this.srcQmp!;
    // From here until the target starts, the source's agent runs the guest again by itself if this controller goes away.
    await this.source.call('qemu.holdStopped', { id: this.id, qmpSocket: this.parsed!.qmpSocket! });
    // A guest that powers off leaves QEMU paused, its images open, instead of exiting.
    await qmp.execute('set-action', { shutdown: 'pause' });
    const down = qmp.waitForEvent('SHUTDOWN', () => true, options.timeoutMs);
    down.catch(() => undefined);
    await qmp.execute('system_powerdown');
    if (await down.then(() => true).catch(() => false)) return this.ctx.journal.record('source-shut-down', {});
    if (!options.forceOff) {
      await this.powerOn();
      throw new FerryError('VM_RUNNING', `VM "${this.ctx.vmName}" on "${this.source.host.name}" did not power off within ${options.timeoutMs / 1000} s`, {
        hint: 'shut it down from inside the guest, give it longer with --shutdown-timeout, or pass --force-off to stop it where it is',
      });
    }
    await qmp.execute('stop');
    this.ctx.journal.record('source-paused', {});
  }

  async powerOn(): Promise<void> {
    let was = 'unknown';
    // The agent that held the guest stopped may have gone, its hold with it: then a new one runs it again.
    this.source = await withLiveAgent(this.source.host, this.source, async (agent) => {
      await agent.call('qemu.releaseStopped', { id: this.id });
      if (agent !== this.source) {
        await this.srcQmp?.close().catch(() => undefined);
        this.srcQmp = await RemoteQmp.open(agent, this.parsed!.qmpSocket!);
      }
      was = await runGuestAgain(this.srcQmp!);
    });
    this.ctx.journal.record('source-resumed', { was });
  }

  async releaseSource(): Promise<void> {
    await this.source.call('qemu.releaseStopped', { id: this.id });
  }

  async checkTarget(vm: VmInfo): Promise<void> {
    // RAM and device state cross as they are: the target's QEMU must read them (the same or a newer one).
    // A warm move that reboots carries no state: any QEMU will do.
    const reboot = !!this.ctx.settings.reboot;
    await checkQemuTarget(this.source, this.target, this.parsed!, vm, { sameOrNewer: !reboot });
    if (!reboot) this.warnTcgMigration(vm);
  }

  /**
   * QEMU before 9.0 can miss a TCG guest's stores while it migrates RAM over
   * several passes (upstream 03bfc2188f): the guest then runs on stale pages
   * on the target and crashes or hangs. The faulty path is taken for RAM of
   * a whole number of 256 KiB blocks, i.e. nearly always.
   */
  private warnTcgMigration(vm: VmInfo): void {
    const major = Number(vm.hypervisorVersion.split('.')[0]);
    if (accelOf(this.parsed!) !== 'tcg' || !(major < 9) || vm.memoryBytes % (256 * 1024) !== 0) return;
    const message = `VM "${vm.name}" runs under TCG (no KVM) on QEMU ${vm.hypervisorVersion}, which can lose guest memory writes while it migrates RAM over several passes (fixed in QEMU 9.0): the guest may crash after the move. Prefer --mode warm --reboot or --mode cold for it, or run it under KVM.`;
    this.ctx.listener({ type: 'warning', code: 'TCG_MIGRATION', message });
    this.ctx.journal.record('warning', { code: 'TCG_MIGRATION' });
  }

  // ---- prepare -----------------------------------------------------------
  // The source owns the VM. Everything made on the target is listed in the
  // target's record first, so that its agent removes it if the controller
  // vanishes, and any later agent there knows what to remove.

  async beginTarget(): Promise<void> {
    await this.target.call('migration.target.begin', { id: this.id, vm: this.vm!.name, token: this.token });
  }

  async claimTargetFiles(paths: string[], lvs: ReadonlyArray<{ vg: string; lv: string }> = []): Promise<void> {
    await this.target.call('migration.target.claim', { id: this.id, files: paths, lvs: [...lvs] });
  }

  async prepareIncoming(plans: readonly DiskPlan[]): Promise<void> {
    // A disk on shared storage is opened in place by the target QEMU: nothing to export or mirror.
    this.plans = plans
      .filter((p) => !p.shared)
      .map((p) => ({
        ...p,
        sourceNode: this.vm!.nodes.get(p.disk.device)!,
        nbdNode: `ferry-nbd-${p.index}`,
        jobId: this.options.warm ? `ferry-warm-${p.index}` : `ferry-mirror-${p.index}`,
        bytesCopied: 0,
      }));
    const { target } = this;
    const vm = this.vm!;
    const parsed = this.parsed!;
    // Files the target QEMU creates itself (monitor socket, serial log): removed on rollback if new.
    for (const f of filesQemuCreates(parsed)) {
      const st = await target.call('file.stat', { path: f });
      if (!st.exists) {
        await target.call('file.mkdir', { path: dirname(f) });
        await target.call('migration.target.claim', { id: this.id, files: [f] });
      }
    }
    this.nbdPort = (await target.call('net.freePort', { address: target.host.address })).port;
    do this.migrationPort = (await target.call('net.freePort', { address: target.host.address })).port;
    while (this.migrationPort === this.nbdPort);

    const argv = targetArgv(parsed, {
      diskPaths: new Map(this.plans.map((p) => [p.disk.path, p.targetPath])),
      diskFormats: new Map(this.plans.map((p) => [p.disk.path, p.targetFormat])),
    });
    const pidfile = `/run/ferry/${vm.name}.incoming.pid`;
    this.ctx.journal.record('target-argv', { argv });
    await target.call('migration.target.claim', { id: this.id, files: [pidfile] });
    const { pid } = await target.call('migration.target.start', { id: this.id, argv, pidfile });
    this.targetPid = pid;
    await target.call('migration.target.claim', { id: this.id, pid, qmpSocket: parsed.qmpSocket });
    this.ctx.journal.record('target-started', { host: target.host.name, pid });
    this.log(`target QEMU started on ${target.host.name} (pid ${pid}), waiting for the incoming migration`);
    this.dstQmp = await RemoteQmp.open(target, parsed.qmpSocket!);
    const dst = await describeWithQmp(this.dstQmp, { pid, name: vm.name, argv });
    for (const p of this.plans) {
      p.targetNode = dst.nodes.get(p.disk.device);
      if (!p.targetNode) throw new FerryError('MIGRATION_FAILED', `The target QEMU has no disk "${p.disk.device}"`);
    }
    await this.dstQmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host: target.host.address, port: String(this.nbdPort) } } });
    for (const p of this.plans) {
      await this.dstQmp.execute('block-export-add', { type: 'nbd', id: `ferry-export-${p.index}`, 'node-name': p.targetNode, name: p.disk.device, writable: true });
    }
    await this.dstQmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await this.dstQmp.execute('migrate-incoming', { uri: `tcp:${target.host.address}:${this.migrationPort}` });
    this.beaconPort = (await target.call('migration.target.incoming', { id: this.id, address: target.host.address })).port;
    this.log(`target exports ${this.plans.length} disk${this.plans.length === 1 ? '' : 's'} over NBD on ${target.host.address}:${this.nbdPort}`);
  }

  // ---- mirror ------------------------------------------------------------
  // The source owns the VM. Its record lists the NBD nodes and jobs about to
  // be added, so that its agent removes them whoever fails.

  async copyDisks(): Promise<void> {
    if (this.options.warm) return this.attachPrecopied();
    const src = this.srcQmp!;
    const { source, target } = this;
    const { signal } = this.ctx;
    await source.call('migration.source.begin', {
      id: this.id,
      vm: this.vm!.name,
      pid: this.vm!.pid,
      qmpSocket: this.parsed!.qmpSocket!,
      nbdNodes: this.plans.map((p) => p.nbdNode),
      jobs: this.plans.map((p) => p.jobId),
      beacon: { address: target.host.address, port: this.beaconPort, token: this.token },
    });
    const ready = new Set<string>();
    const failures: string[] = [];
    const onEvent = (e: QmpEvent): void => {
      const id = text(e.data.device ?? e.data.id);
      if (e.event === 'BLOCK_JOB_READY') ready.add(id);
      if ((e.event === 'BLOCK_JOB_COMPLETED' || e.event === 'BLOCK_JOB_CANCELLED') && this.plans.some((p) => p.jobId === id) && !this.pausedForSwitchover) {
        failures.push(`${id}: ${text(e.data.error) || 'the job ended early'}`);
      }
      if (e.event === 'BLOCK_JOB_ERROR') failures.push(`${id}: I/O error (${String(e.data.operation)})`);
    };
    src.on('event', onEvent);
    try {
      const server = await this.nbdServerForMirrors();
      for (const p of this.plans) {
        await src.execute('blockdev-add', { driver: 'nbd', 'node-name': p.nbdNode, server, export: p.disk.device });
      }
      // All disks at once: they converge together and the pause covers all of them.
      for (const p of this.plans) {
        const args: Record<string, unknown> = { 'job-id': p.jobId, device: p.sourceNode, target: p.nbdNode, sync: p.sync };
        args['copy-mode'] = this.ctx.settings.mirrorMode ?? 'write-blocking';
        await src.execute('blockdev-mirror', args);
      }
      this.log(`mirroring ${this.plans.map((p) => `${p.disk.path} (${p.sync === 'full' ? 'full' : p.disk.backingChain.length ? 'top only' : 'allocated data only'})`).join(', ')}`);
      for (;;) {
        const disks = await this.pollMirrors();
        this.ctx.listener({ type: 'progress', progress: { phase: 'mirror', disks, etaSeconds: this.diskEta(disks), ramSize: this.vm!.memoryBytes, bandwidthLimit: this.ctx.settings.bandwidthBytes } });
        if (failures.length) throw new FerryError('MIGRATION_FAILED', `Disk mirror failed: ${failures.join('; ')}`, { hint: 'check the target host and the network between the hosts, then retry' });
        if (this.plans.every((p) => ready.has(p.jobId))) break;
        await sleep(POLL_MS, signal);
      }
      this.ctx.journal.record('mirror-ready', {});
      this.log('every disk is mirrored; writes now go to both hosts');
    } finally {
      src.off('event', onEvent);
    }
  }

  /** Warm: the source's record lists the last pass its guard runs at the pause; the exports are attached for the catch-up passes. */
  private async attachPrecopied(): Promise<void> {
    const disks = passDisks(this.plans, this.vm!.nodes);
    await this.source.call('migration.source.begin', {
      id: this.id,
      vm: this.vm!.name,
      pid: this.vm!.pid,
      qmpSocket: this.parsed!.qmpSocket!,
      nbdNodes: disks.map(nbdNode),
      jobs: disks.map(jobId),
      finalPass: { actions: disks.flatMap((d) => passActions(d, 'changes')), jobs: disks.map(jobId) },
      beacon: { address: this.target.host.address, port: this.beaconPort, token: this.token },
    });
    const server = await this.nbdServerForMirrors();
    await attachTarget(this.srcQmp!, disks, { host: server.host, port: Number(server.port) });
    this.ctx.journal.record('mirror-ready', { warm: true });
  }

  /**
   * Where the source's NBD clients connect: the target's server, or under a
   * cap a relay on the source held to it. The mirror job's own speed limit
   * would count zeros too, which cross as short write-zeroes requests.
   */
  private async nbdServerForMirrors(): Promise<{ type: 'inet'; host: string; port: string }> {
    const { source, target } = this;
    const { bandwidthBytes } = this.ctx.settings;
    if (!bandwidthBytes) return { type: 'inet', host: target.host.address, port: String(this.nbdPort) };
    const { port } = await source.call('migration.source.relay', {
      id: this.id,
      // On loopback: the relay serves this host's QEMU alone.
      address: '127.0.0.1',
      to: { host: target.host.address, port: this.nbdPort },
      bytesPerSecond: Math.max(1, Math.floor(bandwidthBytes)),
    });
    return { type: 'inet', host: '127.0.0.1', port: String(port) };
  }

  private mirrorsFailed = false;
  private pausedForSwitchover = false;

  private async pollMirrors(): Promise<DiskProgress[]> {
    this.checkAgents();
    // Warm: the disks are in step between passes; no job runs until the pause.
    if (this.options.warm) return this.plans.map((p) => ({ device: p.disk.device, done: p.disk.virtualSize, total: p.disk.virtualSize, ready: true }));
    const jobs = await this.srcQmp!.execute<Array<{ device: string; offset: number; len: number; ready: boolean; status: string }>>('query-block-jobs');
    const writeRates = await this.guestWriteRates();
    return this.plans.map((p) => {
      const j = jobs.find((x) => x.device === p.jobId);
      if (j) p.bytesCopied = j.offset;
      // After the pause the source's agent completes the mirrors: gone is then fine.
      else if (!this.pausedForSwitchover) this.mirrorsFailed = true;
      return { device: p.disk.device, done: j?.offset ?? p.bytesCopied, total: j?.len ?? p.disk.virtualSize, ready: j?.ready ?? false, writeRate: writeRates.get(p.disk.device) };
    });
  }

  private lastWritten?: { t: number; bytes: Map<string, number> };

  /** Bytes per second the guest writes to each disk, from QEMU's counters between two polls. */
  private async guestWriteRates(): Promise<Map<string, number>> {
    const stats = await this.srcQmp!.execute<Array<{ device?: string; qdev?: string; 'node-name'?: string; stats: { wr_bytes: number } }>>('query-blockstats').catch(() => []);
    const now = performance.now();
    const bytes = new Map<string, number>();
    for (const p of this.plans) {
      const entry = stats.find((e) => e.device === p.disk.device || e.qdev === p.disk.device || e['node-name'] === p.sourceNode);
      if (entry) bytes.set(p.disk.device, entry.stats.wr_bytes);
    }
    const rates = new Map<string, number>();
    const last = this.lastWritten;
    if (last && now > last.t) {
      for (const [device, n] of bytes) {
        const before = last.bytes.get(device);
        if (before !== undefined) rates.set(device, Math.max(0, ((n - before) * 1000) / (now - last.t)));
      }
    }
    this.lastWritten = { t: now, bytes };
    return rates;
  }

  /** An agent lost before the commit point fails the phase: the migration is then settled with fresh agents. */
  private checkAgents(): void {
    for (const agent of [this.source, this.target]) {
      if (agent.closed) throw new FerryError('AGENT_GONE', `Lost the agent on host "${agent.host.name}"`, { hint: 'check the host and the link to it, then retry' });
    }
  }

  private mirrorStart?: { t: number; done: number };

  /** Seconds left for the mirrors, from the rate they have copied at so far. */
  private diskEta(disks: DiskProgress[]): number | undefined {
    const done = disks.reduce((s, d) => s + d.done, 0);
    const rest = disks.reduce((s, d) => s + Math.max(0, d.total - d.done), 0);
    const now = performance.now();
    this.mirrorStart ??= { t: now, done };
    const seconds = (now - this.mirrorStart.t) / 1000;
    const rate = seconds > 0.5 ? (done - this.mirrorStart.done) / seconds : this.ctx.settings.bandwidthBytes;
    return rate ? rest / rate : undefined;
  }

  // ---- memory ------------------------------------------------------------
  // The source owns the VM; its agent makes the switch-over by itself at the pause.

  async copyMemory(): Promise<void> {
    this.checkAgents();
    const src = this.srcQmp!;
    const { target } = this;
    const { signal } = this.ctx;
    const caps = [
      { capability: 'events', state: true },
      { capability: 'pause-before-switchover', state: true },
      { capability: 'auto-converge', state: !!this.ctx.settings.autoConverge },
    ];
    await src.execute('migrate-set-capabilities', { capabilities: caps });
    const params: Record<string, unknown> = {
      'downtime-limit': this.ctx.settings.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS,
      'max-bandwidth': Math.floor(this.ctx.settings.bandwidthBytes ?? 10 * 1024 * MiB),
    };
    await src.execute('migrate-set-parameters', params);
    let paused!: () => void;
    const pausedNow = new Promise<void>((r) => (paused = r));
    const onStop = (e: QmpEvent): void => {
      if (e.event === 'STOP') this.sourceStop = e;
      if (e.event === 'MIGRATION' && ['pre-switchover', 'device', 'completed'].includes(String(e.data.status))) this.pausedForSwitchover = true;
      if (e.event === 'MIGRATION' && ['pre-switchover', 'failed', 'cancelled'].includes(String(e.data.status))) paused();
    };
    src.on('event', onStop);
    this.resumed = this.dstQmp!.waitForEvent('RESUME', () => true, 0);
    this.resumed.catch(() => undefined);
    await src.execute('migrate', { uri: `tcp:${target.host.address}:${this.migrationPort}` });
    this.log(`migrating RAM to ${target.host.address}:${this.migrationPort}`);
    const convergence = new ConvergenceWatch(this.ctx);
    for (;;) {
      const m = await src.execute<QueryMigrate>('query-migrate');
      if (PAUSED_STATES.includes(m.status)) break;
      const disks = await this.pollMirrors();
      if (this.mirrorsFailed) {
        // A target QEMU whose incoming migration broke exits, taking its NBD
        // exports (and so the mirrors) with it: name the cause, not the effect.
        const now = await src.execute<QueryMigrate>('query-migrate').catch(() => m);
        if (now.status === 'failed' || now.status === 'cancelled') throw ramFailed(now);
        if (PAUSED_STATES.includes(now.status)) break;
        throw new FerryError('MIGRATION_FAILED', 'A disk mirror stopped during the RAM migration', { hint: 'check the target host and the network, then retry' });
      }
      const ram = ramProgress(m);
      const eta = ram && ram.throughput > 0 ? ram.remaining / ram.throughput : undefined;
      this.ctx.listener({ type: 'progress', progress: { phase: 'memory', disks, ram, etaSeconds: eta, ramSize: this.vm!.memoryBytes, bandwidthLimit: this.ctx.settings.bandwidthBytes } });
      if (m.status === 'failed' || m.status === 'cancelled') throw ramFailed(m);
      convergence.observe(ram);
      await abortable(Promise.race([sleep(POLL_MS), pausedNow]), signal);
    }
    src.off('event', onStop);
  }

  // ---- switch over -------------------------------------------------------
  // The guest is paused on the source. The source's agent completes the
  // mirrors and lets QEMU finish; the commit point is the target reporting
  // its incoming migration completed. Before it, the source owns the VM;
  // from it on, the target does, and nothing may destroy the target.

  async switchOver(): Promise<void> {
    const { source, target } = this;
    this.ctx.journal.record('pre-switchover', { since_stop_ms: this.sinceStop() });
    const end = await source.call('migration.source.outcome', { id: this.id });
    const result = end.switchover;
    for (const p of this.plans) p.bytesCopied = result?.copied[p.jobId] ?? p.bytesCopied;
    if (this.options.warm) this.stats.lastPassBytes = this.plans.reduce((s, p) => s + (result?.copied[p.jobId] ?? 0), 0);
    this.ctx.journal.record('continued', { ok: result?.ok, status: end.status, paused_to_continue_ms: result?.pausedToContinueMs, since_stop_ms: this.sinceStop() });
    if (end.status !== 'completed') {
      throw new FerryError('MIGRATION_FAILED', `The switch-over ${end.status === 'none' ? 'failed' : end.status}${end.error ? `: ${end.error}` : ''}`, {
        hint: 'the VM keeps running on the source; retry',
      });
    }
    this.ctx.journal.record('source-completed', { since_stop_ms: this.sinceStop() });
    const { outcome } = await target.call('migration.target.resolve', { id: this.id, abort: false, waitMs: 120_000 });
    if (outcome !== 'committed') throw new FerryError('MIGRATION_FAILED', `The target did not take the VM over (${outcome})`, { hint: 'the VM keeps running on the source; retry' });
    this.committed = true;
    this.ctx.journal.record('committed', { host: target.host.name, since_stop_ms: this.sinceStop() });
    const resume = await withTimeout(this.resumed!, 60_000, 'the target to resume');
    this.ctx.journal.record('target-resumed', { since_stop_ms: this.sinceStop() });
    const m = await this.srcQmp!.execute<QueryMigrate>('query-migrate').catch(() => undefined);
    this.stats.ramBytes = m?.ram?.transferred ?? 0;
    this.stats.hypervisorDowntimeMs = m?.downtime;
    const mirrored = this.plans.reduce((s, p) => s + p.bytesCopied, 0);
    // Under a cap the relay counts what crossed; the rest of what the mirrors covered were zeros.
    this.stats.diskBytes = end.relayedBytes ?? mirrored;
    this.stats.diskZeroBytes = end.relayedBytes === undefined ? undefined : Math.max(0, mirrored - end.relayedBytes);
    if (this.sourceStop) this.stats.downtimeMs = Math.max(0, Math.round((resume.timestampMs - this.sourceStop.timestampMs) * 10) / 10);
    this.log(`switched over: the VM runs on ${target.host.name}`);
  }

  private sinceStop(): number | undefined {
    return this.sourceStop ? Date.now() - this.sourceStop.timestampMs : undefined;
  }

  // ---- finish ------------------------------------------------------------
  // The target owns the VM: the source's QEMU stops, its disks stay unless asked.

  async finish(): Promise<void> {
    const { source, target } = this;
    await this.closeSessions();
    await source.call('migration.source.resolve', { id: this.id, verdict: 'committed' });
    this.ctx.journal.record('source-stopped', { host: source.host.name });
    this.log(`source QEMU on ${source.host.name} stopped`);
    await target.call('migration.target.release', { id: this.id });
    if (!(await target.call('qemu.alive', { pid: this.targetPid })).alive) {
      throw new FerryError('VM_DIED', `VM "${this.vm!.name}" died on "${target.host.name}" right after it had taken the VM over`, {
        hint: `its disks on "${target.host.name}" hold everything it wrote: start it there again`,
      });
    }
  }

  private async closeSessions(): Promise<void> {
    await this.srcQmp?.close().catch(() => undefined);
    await this.dstQmp?.close().catch(() => undefined);
  }

  /**
   * After any failure: one owner for the VM, whatever was lost on the way
   * (agents are started again where theirs went away). Returns who owns it.
   */
  async settle(): Promise<Settlement> {
    const t0 = performance.now();
    await this.closeSessions();
    const source = await liveAgent(this.source.host, this.source);
    const target = await liveAgent(this.target.host, this.target);
    this.source = source;
    this.target = target;
    const agentsMs = Math.round(performance.now() - t0);
    const settlement = await settleMigration(this.id, source, target);
    if (settlement.outcome === 'committed') this.committed = true;
    this.ctx.journal.record('settled', { outcome: settlement.outcome, source: settlement.source, notes: settlement.notes, ms: { agents: agentsMs, ...settlement.ms } });
    for (const note of settlement.notes ?? []) this.log(note);
    return settlement;
  }

  /** The agents the migration ended with (new ones if it had to start them again). */
  get agents(): AgentClient[] {
    return [this.source, this.target];
  }

  async runsOn(agent: AgentClient): Promise<boolean> {
    try {
      const proc = (await agent.call('qemu.list', undefined)).find((p) => p.name === this.ctx.vmName);
      if (!proc?.qmpSocket) return false;
      const qmp = await RemoteQmp.open(agent, proc.qmpSocket);
      try {
        return (await qmp.execute<{ status: string }>('query-status')).status === 'running';
      } finally {
        await qmp.close();
      }
    } catch {
      return false;
    }
  }

  async existsOn(agent: AgentClient): Promise<boolean> {
    return (await agent.call('qemu.list', undefined)).some((p) => p.name === this.ctx.vmName);
  }

  hypervisorLog(): string | undefined {
    return this.parsed && qemuLogFile(this.parsed);
  }
}

interface QueryMigrate {
  status: string;
  'error-desc'?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  ram?: {
    transferred: number;
    remaining: number;
    total: number;
    'dirty-pages-rate': number;
    'page-size': number;
    mbps: number;
    'dirty-sync-count': number;
  };
}

function ramFailed(m: QueryMigrate): FerryError {
  return new FerryError('MIGRATION_FAILED', `RAM migration ${m.status}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`, {
    hint: 'check the network between the hosts and the target QEMU, then retry',
  });
}

function ramProgress(m: QueryMigrate): RamProgress | undefined {
  if (!m.ram) return undefined;
  return {
    transferred: m.ram.transferred,
    remaining: m.ram.remaining,
    total: m.ram.total,
    dirtyRate: m.ram['dirty-pages-rate'] * (m.ram['page-size'] || 4096),
    throughput: (m.ram.mbps * 1e6) / 8,
    iterations: m.ram['dirty-sync-count'],
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FerryError('MIGRATION_FAILED', `Timed out after ${ms / 1000} s waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
