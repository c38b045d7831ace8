/**
 * Live migration of a QEMU VM whose disks are on the source's local storage,
 * the sequence libvirt, Proxmox and Nova drive: the target waits with
 * `-incoming defer` and exports its fresh disks over NBD; the source mirrors
 * every disk into them, then migrates RAM with `pause-before-switchover`; at
 * the pause the mirrors are completed (the disks are then identical, the
 * guest being stopped), the switch-over goes on, and the target resumes.
 *
 * Each step is a phase with its own rollback: until the switch-over, a
 * failure leaves the source running on its untouched disks and removes what
 * was made on the target.
 */
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import type { AgentClient } from '../../hosts/agent-client.js';
import type { Journal } from '../../migrate/journal.js';
import type { Phase } from '../../migrate/phases.js';
import type { MigrationSettings } from '../../migrate/settings.js';
import type { DiskProgress, MigrationListener, RamProgress } from '../../migrate/progress.js';
import type { QmpEvent } from '../../qmp/client.js';
import { abortable, sleep } from '../../util/abort.js';
import { FerryError } from '../../util/errors.js';
import { formatMiB, MiB } from '../../util/units.js';
import type { VmDisk, VmInfo } from '../driver.js';
import { parseQemuArgv, parseKeyval, targetArgv, type ParsedArgv } from './argv.js';
import { liveAgent, settleMigration, type Settlement } from './settle.js';
import { describeWithQmp, findQemuProcess } from './inspect.js';
import { RemoteQmp } from './remote-qmp.js';
import { text } from '../../util/text.js';

export interface LiveMigrationOptions extends MigrationSettings {
  vmName: string;
  source: AgentClient;
  target: AgentClient;
  /** Bytes per second for disks and RAM together; undefined: unlimited. */
  bandwidthBytes?: number;
  signal: AbortSignal;
  listener: MigrationListener;
  journal: Journal;
}

export interface LiveMigrationStats {
  downtimeMs?: number;
  qemuDowntimeMs?: number;
  ramBytes: number;
  /** Disk bytes that crossed to the target. */
  diskBytes: number;
  /** Of the ranges the mirrors covered, bytes that were zeros and crossed as write-zeroes requests (known under a cap). */
  diskZeroBytes?: number;
  setupMs?: number;
  ramIterations?: number;
}

interface DiskPlan {
  disk: VmDisk;
  index: number;
  targetPath: string;
  targetFormat: string;
  /** ferry creates the target image (and removes it on rollback). */
  create: boolean;
  /** The target already holds the same backing file: only the top crosses. */
  sync: 'full' | 'top';
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

export class QemuLiveMigration {
  readonly stats: LiveMigrationStats = { ramBytes: 0, diskBytes: 0 };
  /** Set at the commit point, the target's incoming migration completed: from then on the target owns the VM. */
  committed = false;
  /** How a failed migration was settled, once it was. */
  settlement?: Settlement;

  private srcQmp?: RemoteQmp;
  private dstQmp?: RemoteQmp;
  private vm?: VmInfo & { nodes: Map<string, string> };
  private parsed?: ParsedArgv;
  private plans: DiskPlan[] = [];
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
  private convergenceWarned = false;

  constructor(private readonly options: LiveMigrationOptions) {
    this.id = options.journal.id;
  }

  get vmInfo(): VmInfo | undefined {
    return this.vm;
  }

  phases(): Phase[] {
    return [
      { name: 'check', run: () => this.check() },
      // One rollback for every phase from here on: settle the migration to
      // whichever side owns the VM at the moment of the failure.
      { name: 'prepare', run: () => this.prepareTarget(), rollback: async () => void (this.settlement = await this.settle()) },
      { name: 'mirror', run: () => this.mirrorDisks() },
      { name: 'memory', run: () => this.migrateMemory() },
      { name: 'switchover', run: () => this.switchOver() },
      { name: 'finish', run: () => this.finish() },
    ];
  }

  private log(message: string): void {
    this.options.listener({ type: 'log', message });
    this.options.journal.record('log', { message });
  }

  // ---- check -------------------------------------------------------------

  private async check(): Promise<void> {
    const { source, target } = this.options;
    const proc = await findQemuProcess(source, this.options.vmName);
    this.parsed = parseQemuArgv(proc.argv);
    this.srcQmp = await RemoteQmp.open(source, proc.qmpSocket!);
    this.vm = await describeWithQmp(this.srcQmp, proc);
    const vm = this.vm;
    this.options.journal.record('vm', { pid: vm.pid, state: vm.state, memory: vm.memoryBytes, disks: vm.disks.map((d) => ({ path: d.path, format: d.format, size: d.virtualSize })) });

    if (vm.state !== 'running') {
      throw new FerryError('VM_NOT_RUNNING', `VM "${vm.name}" on "${source.host.name}" is ${vm.state}, not running`, {
        hint: 'live migration moves a running VM; resume it first (QMP "cont")',
      });
    }
    if (source.facts.hostId === target.facts.hostId) {
      throw new FerryError('SAME_HOST', `Hosts "${source.host.name}" and "${target.host.name}" are the same machine (host id ${source.facts.hostId})`, {
        hint: 'choose another target; if they really differ, give them distinct /etc/machine-id',
      });
    }
    const needMem = vm.memoryBytes + 128 * MiB;
    if (target.facts.memAvailableBytes < needMem) {
      throw new FerryError('NO_MEMORY', `Host "${target.host.name}" has ${formatMiB(target.facts.memAvailableBytes)} MiB free, VM "${vm.name}" needs ${formatMiB(needMem)} MiB`, {
        hint: 'free memory on the target or choose another target',
      });
    }
    const binary = this.parsed.binary;
    const srcVersion = vm.hypervisorVersion;
    const dstVersion = await target.call('qemu.version', { binary }).catch((e: FerryError) => {
      throw new FerryError('INCOMPATIBLE', `Cannot run "${binary}" on host "${target.host.name}": ${e.message}`, { hint: 'install the same QEMU on the target' });
    });
    if (compareVersions(dstVersion.version, srcVersion) < 0) {
      throw new FerryError('INCOMPATIBLE', `QEMU on "${target.host.name}" (${dstVersion.version}) is older than on "${source.host.name}" (${srcVersion})`, {
        hint: 'a VM can only move to the same or a newer QEMU; upgrade QEMU on the target',
      });
    }
    const running = await target.call('qemu.list', undefined);
    if (running.some((p) => p.name === vm.name)) {
      throw new FerryError('TARGET_EXISTS', `A VM named "${vm.name}" already runs on "${target.host.name}"`, { hint: 'stop it there, or migrate to another host' });
    }
    for (const src of this.options.diskMap.keys()) {
      if (!vm.disks.some((d) => d.path === src)) {
        throw new FerryError('USAGE', `--disk-map names "${src}", which is not a disk of VM "${vm.name}"`, { hint: `its disks: ${vm.disks.map((d) => d.path).join(', ')}` });
      }
    }
    for (const f of vm.auxFiles) {
      const st = await target.call('file.stat', { path: f });
      if (!st.exists) {
        throw new FerryError('NOT_FOUND', `VM "${vm.name}" boots from "${f}", which does not exist on "${target.host.name}"`, {
          hint: `copy it there at the same path (e.g. "ferry sync ${f} ${target.host.name}:${f}")`,
        });
      }
    }

    const needByDir = new Map<string, number>();
    this.plans = [];
    for (const [index, disk] of vm.disks.entries()) {
      if (disk.cache.noFlush && !this.options.force) {
        throw new FerryError('UNSAFE_CACHE', `Disk "${disk.path}" uses cache=unsafe: writes the guest thinks are safe may be lost`, {
          hint: 'restart the VM with cache=none or writeback, or pass --force to migrate anyway',
        });
      }
      const targetPath = this.options.diskMap.get(disk.path) ?? disk.path;
      const st = await target.call('file.stat', { path: targetPath });
      const plan: DiskPlan = {
        disk,
        index,
        targetPath,
        targetFormat: disk.format,
        create: true,
        sync: 'full',
        sourceNode: vm.nodes.get(disk.device)!,
        nbdNode: `ferry-nbd-${index}`,
        jobId: `ferry-mirror-${index}`,
        bytesCopied: 0,
      };
      if (st.exists && st.type === 'block') {
        if ((st.size ?? 0) < disk.virtualSize) {
          throw new FerryError('TARGET_TOO_SMALL', `Target "${targetPath}" on "${target.host.name}" holds ${st.size} bytes; disk "${disk.path}" needs ${disk.virtualSize}`, {
            hint: 'map the disk to a device at least as large as the source disk',
          });
        }
        if (!this.options.force) {
          const holders = await target.call('process.holding', { path: targetPath });
          if (holders.pids.length) throw new FerryError('IN_USE', `Target "${targetPath}" on "${target.host.name}" is in use by process ${holders.pids.join(', ')}`, { hint: 'choose a free device' });
        }
        plan.create = false;
        plan.targetFormat = 'raw';
      } else if (st.exists) {
        if (!this.options.force) {
          throw new FerryError('TARGET_EXISTS', `Target image "${targetPath}" already exists on "${target.host.name}"`, {
            hint: 'ferry does not overwrite it: remove it, map the disk elsewhere with --disk-map SRC=DST, or pass --force to overwrite',
          });
        }
        if (st.type !== 'file') throw new FerryError('TARGET_EXISTS', `Target "${targetPath}" on "${target.host.name}" is a ${st.type}`, { hint: 'map the disk to a file or block device path' });
      }
      const base = disk.backingChain[0];
      if (plan.create) {
        if (base) await this.checkBase(disk, base.filename);
        // A new image reads as zeros: what the source's top has not allocated stays a hole, never crosses.
        plan.sync = 'top';
      }
      if (plan.create) {
        const dir = dirname(targetPath);
        const need =
          plan.sync === 'top'
            ? (disk.allocatedSize ?? disk.virtualSize)
            : Math.min(disk.virtualSize, Math.max(disk.allocatedSize ?? 0, ...disk.backingChain.map((b) => b.actualSize ?? 0)) * 2 || disk.virtualSize);
        needByDir.set(dir, (needByDir.get(dir) ?? 0) + need);
      }
      this.plans.push(plan);
    }
    for (const [dir, need] of needByDir) {
      const free = await target.call('file.free', { path: dir });
      if (free.freeBytes < need) {
        throw new FerryError('NO_SPACE', `Host "${target.host.name}" has ${formatMiB(free.freeBytes)} MiB free in "${free.dir}"; the disks need about ${formatMiB(need)} MiB`, {
          hint: 'free space there or map the disks elsewhere with --disk-map',
        });
      }
    }
    this.log(`checked: ${vm.name} (${formatMiB(vm.memoryBytes)} MiB RAM, ${vm.disks.length} disk${vm.disks.length === 1 ? '' : 's'}) ${source.host.name} -> ${target.host.name}`);
  }

  /** The base must hold the same bytes on both hosts, or the top would be read against a different disk. */
  private async checkBase(disk: VmDisk, basePath: string): Promise<void> {
    const { source, target } = this.options;
    const st = await target.call('file.stat', { path: basePath });
    if (!st.exists) {
      throw new FerryError('BACKING_MISMATCH', `Disk "${disk.path}" has backing file "${basePath}", which does not exist on "${target.host.name}"`, {
        hint: `copy the base there first ("ferry sync ${basePath} ${target.host.name}:${basePath}"); only the top image is migrated`,
      });
    }
    const [a, b] = await Promise.all([source.call('file.sha256', { path: basePath }), target.call('file.sha256', { path: basePath })]);
    if (a.sha256 !== b.sha256) {
      throw new FerryError('BACKING_MISMATCH', `Backing file "${basePath}" differs between "${source.host.name}" and "${target.host.name}"`, {
        hint: 'the target must hold an identical base image; sync it again',
        details: { source: a.sha256, target: b.sha256 },
      });
    }
    this.log(`backing file ${basePath} is identical on both hosts: only the top of ${disk.path} crosses`);
  }

  // ---- prepare -----------------------------------------------------------
  // The source owns the VM. Everything made on the target is listed in the
  // target's record first, so that its agent removes it if the controller
  // vanishes, and any later agent there knows what to remove.

  private async prepareTarget(): Promise<void> {
    const { target } = this.options;
    const vm = this.vm!;
    const parsed = this.parsed!;
    await target.call('migration.target.begin', { id: this.id, vm: vm.name, token: this.token });
    for (const p of this.plans) {
      if (!p.create) continue;
      const base = p.sync === 'top' ? p.disk.backingChain[0] : undefined;
      await target.call('migration.target.claim', { id: this.id, files: [p.targetPath] });
      await target.call('image.create', { path: p.targetPath, format: p.targetFormat, sizeBytes: p.disk.virtualSize, backingFile: base?.filename, backingFormat: base?.format });
      this.options.journal.record('created', { host: target.host.name, path: p.targetPath, format: p.targetFormat, backing: base?.filename });
    }
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
    this.options.journal.record('target-argv', { argv });
    await target.call('migration.target.claim', { id: this.id, files: [pidfile] });
    const { pid } = await target.call('qemu.start', { argv, pidfile });
    this.targetPid = pid;
    await target.call('migration.target.claim', { id: this.id, pid, qmpSocket: parsed.qmpSocket });
    this.options.journal.record('target-started', { host: target.host.name, pid });
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

  private async mirrorDisks(): Promise<void> {
    const src = this.srcQmp!;
    const { source, target, signal } = this.options;
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
        args['copy-mode'] = this.options.mirrorMode ?? 'write-blocking';
        await src.execute('blockdev-mirror', args);
      }
      this.log(`mirroring ${this.plans.map((p) => `${p.disk.path} (${p.sync === 'full' ? 'full' : p.disk.backingChain.length ? 'top only' : 'allocated data only'})`).join(', ')}`);
      for (;;) {
        const disks = await this.pollMirrors();
        this.options.listener({ type: 'progress', progress: { phase: 'mirror', disks, etaSeconds: this.diskEta(disks), ramSize: this.vm!.memoryBytes, bandwidthLimit: this.options.bandwidthBytes } });
        if (failures.length) throw new FerryError('MIGRATION_FAILED', `Disk mirror failed: ${failures.join('; ')}`, { hint: 'check the target host and the network between the hosts, then retry' });
        if (this.plans.every((p) => ready.has(p.jobId))) break;
        await sleep(POLL_MS, signal);
      }
      this.options.journal.record('mirror-ready', {});
      this.log('every disk is mirrored; writes now go to both hosts');
    } finally {
      src.off('event', onEvent);
    }
  }

  /**
   * Where the source's NBD clients connect: the target's server, or under a
   * cap a relay on the source held to it. The mirror job's own speed limit
   * would count zeros too, which cross as short write-zeroes requests.
   */
  private async nbdServerForMirrors(): Promise<{ type: 'inet'; host: string; port: string }> {
    const { source, target, bandwidthBytes } = this.options;
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
    for (const agent of [this.options.source, this.options.target]) {
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
    const rate = seconds > 0.5 ? (done - this.mirrorStart.done) / seconds : this.options.bandwidthBytes;
    return rate ? rest / rate : undefined;
  }

  // ---- memory ------------------------------------------------------------
  // The source owns the VM; its agent makes the switch-over by itself at the pause.

  private async migrateMemory(): Promise<void> {
    this.checkAgents();
    const src = this.srcQmp!;
    const { target, signal } = this.options;
    const caps = [
      { capability: 'events', state: true },
      { capability: 'pause-before-switchover', state: true },
      { capability: 'auto-converge', state: !!this.options.autoConverge },
    ];
    await src.execute('migrate-set-capabilities', { capabilities: caps });
    const params: Record<string, unknown> = { 'downtime-limit': this.options.maxDowntimeMs ?? DEFAULT_MAX_DOWNTIME_MS, 'max-bandwidth': Math.floor(this.options.bandwidthBytes ?? 10 * 1024 * MiB) };
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
    let slowPolls = 0;
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
      this.options.listener({ type: 'progress', progress: { phase: 'memory', disks, ram, etaSeconds: eta, ramSize: this.vm!.memoryBytes, bandwidthLimit: this.options.bandwidthBytes } });
      if (m.status === 'failed' || m.status === 'cancelled') throw ramFailed(m);
      if (ram && ram.iterations >= 2 && ram.dirtyRate > 0 && ram.throughput > 0 && ram.dirtyRate >= ram.throughput * 0.9) slowPolls++;
      else slowPolls = 0;
      if (slowPolls >= 8 && !this.convergenceWarned) {
        this.convergenceWarned = true;
        this.options.listener({
          type: 'warning',
          code: 'NOT_CONVERGING',
          message: `The guest dirties ${formatMiB(ram!.dirtyRate)} MiB/s of RAM, as fast as the ${formatMiB(ram!.throughput)} MiB/s the link carries: the migration will not converge. Raise --bandwidth, pass --auto-converge to slow the guest down, or press Ctrl-C to abort (the VM keeps running on the source).`,
        });
        this.options.journal.record('warning', { code: 'NOT_CONVERGING', dirtyRate: ram!.dirtyRate, throughput: ram!.throughput });
      }
      await abortable(Promise.race([sleep(POLL_MS), pausedNow]), signal);
    }
    src.off('event', onStop);
  }

  // ---- switch over -------------------------------------------------------
  // The guest is paused on the source. The source's agent completes the
  // mirrors and lets QEMU finish; the commit point is the target reporting
  // its incoming migration completed. Before it, the source owns the VM;
  // from it on, the target does, and nothing may destroy the target.

  private async switchOver(): Promise<void> {
    const { source, target } = this.options;
    this.options.journal.record('pre-switchover', { since_stop_ms: this.sinceStop() });
    const end = await source.call('migration.source.outcome', { id: this.id });
    const result = end.switchover;
    for (const p of this.plans) p.bytesCopied = result?.copied[p.jobId] ?? p.bytesCopied;
    this.options.journal.record('continued', { ok: result?.ok, status: end.status, paused_to_continue_ms: result?.pausedToContinueMs, since_stop_ms: this.sinceStop() });
    if (end.status !== 'completed') {
      throw new FerryError('MIGRATION_FAILED', `The switch-over ${end.status === 'none' ? 'failed' : end.status}${end.error ? `: ${end.error}` : ''}`, {
        hint: 'the VM keeps running on the source; retry',
      });
    }
    this.options.journal.record('source-completed', { since_stop_ms: this.sinceStop() });
    const { outcome } = await target.call('migration.target.resolve', { id: this.id, abort: false, waitMs: 120_000 });
    if (outcome !== 'committed') throw new FerryError('MIGRATION_FAILED', `The target did not take the VM over (${outcome})`, { hint: 'the VM keeps running on the source; retry' });
    this.committed = true;
    this.options.journal.record('committed', { host: target.host.name, since_stop_ms: this.sinceStop() });
    const resume = await withTimeout(this.resumed!, 60_000, 'the target to resume');
    this.options.journal.record('target-resumed', { since_stop_ms: this.sinceStop() });
    const m = await this.srcQmp!.execute<QueryMigrate>('query-migrate').catch(() => undefined);
    this.stats.ramBytes = m?.ram?.transferred ?? 0;
    this.stats.qemuDowntimeMs = m?.downtime;
    this.stats.setupMs = m?.['setup-time'];
    this.stats.ramIterations = m?.ram?.['dirty-sync-count'];
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

  private async finish(): Promise<void> {
    const { source, target } = this.options;
    await this.closeSessions();
    await source.call('migration.source.resolve', { id: this.id, verdict: 'committed' });
    this.options.journal.record('source-stopped', { host: source.host.name });
    this.log(`source QEMU on ${source.host.name} stopped`);
    await target.call('migration.target.release', { id: this.id });
    if (!(await target.call('qemu.alive', { pid: this.targetPid })).alive) {
      throw new FerryError('VM_DIED', `VM "${this.vm!.name}" died on "${target.host.name}" right after it had taken the VM over`, {
        hint: `its disks on "${target.host.name}" hold everything it wrote: start it there again`,
      });
    }
    if (this.options.deleteSource) await this.deleteSourceDisks();
    else this.log(`source disks kept on ${source.host.name} (pass --delete-source to remove them)`);
  }

  /** Only ever after the commit point, and never by a recovery. */
  private async deleteSourceDisks(): Promise<void> {
    const { source } = this.options;
    for (const p of this.plans) {
      const st = await source.call('file.stat', { path: p.disk.path });
      if (st.type === 'file') {
        await source.call('file.remove', { path: p.disk.path });
        this.log(`deleted source disk ${source.host.name}:${p.disk.path} (--delete-source)`);
      }
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
    await this.closeSessions();
    const source = await liveAgent(this.options.source.host, this.options.source);
    const target = await liveAgent(this.options.target.host, this.options.target);
    this.options.source = source;
    this.options.target = target;
    const settlement = await settleMigration(this.id, source, target);
    if (settlement.outcome === 'committed') this.committed = true;
    this.options.journal.record('settled', { outcome: settlement.outcome, source: settlement.source });
    return settlement;
  }

  /** The agents the migration ended with (new ones if it had to start them again). */
  get agents(): AgentClient[] {
    return [this.options.source, this.options.target];
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

/** Paths QEMU itself creates when it starts with this command line. */
function filesQemuCreates(parsed: ParsedArgv): string[] {
  const files = new Set<string>();
  if (parsed.qmpSocket) files.add(parsed.qmpSocket);
  for (const o of parsed.options) {
    if (!o.value) continue;
    if (o.flag === '-chardev') {
      const kv = parseKeyval(o.value, 'backend');
      if (['file', 'socket', 'pipe'].includes(kv.get('backend') ?? '') && kv.get('path')) files.add(kv.get('path')!);
    }
    if (o.flag === '-serial' && o.value.startsWith('file:')) files.add(o.value.slice(5));
  }
  return [...files];
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

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
