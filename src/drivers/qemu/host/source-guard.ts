/**
 * The source host's side of a live migration. The source owns the VM until
 * the target reports the incoming migration completed; until then every
 * failure must leave the VM running here on its untouched disks, with
 * nothing of ferry's left in its QEMU (mirror jobs, NBD client nodes,
 * migration settings). The guard also makes the switch-over itself, at
 * QEMU's pause, with no round trip to the controller.
 *
 * Alone (the controller gone), it cancels a migration that has not reached
 * the pause and rolls back; past the pause it lets QEMU finish, then asks the
 * target's beacon who owns the VM: the target (stop this QEMU) or nobody yet
 * because the target failed (resume it here).
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { QmpClient, QmpEvent } from '../../../qmp/client.js';
import { FerryError, messageOf } from '../../../util/errors.js';
import { processAlive } from '../../../util/exec.js';
import { recordToTakeOver, removeRecord, saveRecord, type SourceRecord } from './migration-record.js';
import { resumeAfterMigration } from '../guest-power.js';
import { acquireQmp, releaseQmp } from './qmp-pool.js';
import { ThrottledRelay } from './throttled-relay.js';
import { text } from '../../../util/text.js';

export interface SwitchoverResult {
  ok: boolean;
  error?: string;
  /** Bytes each mirror copied, by job id. */
  copied: Record<string, number>;
  /** Milliseconds from the pause to migrate-continue being accepted. */
  pausedToContinueMs: number;
}

/** How the source's migration ended, as QEMU says. */
export interface SourceOutcome {
  status: 'completed' | 'failed' | 'cancelled' | 'none';
  /** Bytes the disks' relay carried to the target, when the migration had a cap. */
  relayedBytes?: number;
  error?: string;
  switchover?: SwitchoverResult;
}

export type SourceVerdict = 'committed' | 'aborted' | 'died';
export type SourceResolution = 'stopped' | 'resumed' | 'none';

const CHANGED_CAPABILITIES = ['events', 'pause-before-switchover', 'auto-converge'];
const CHANGED_PARAMETERS = ['downtime-limit', 'max-bandwidth'];
const TERMINAL = ['completed', 'failed', 'cancelled', 'none'];
/** How long a rollback waits for a cancelled migration to end, cancelling it again every CANCEL_AGAIN_MS. */
const CANCEL_WAIT_MS = 60_000;
const CANCEL_AGAIN_MS = 2_000;
/** How long a lone guard asks the target before leaving a finished source paused for `ferry recover`. */
const LONE_VERDICT_WAIT_MS = 5 * 60_000;

const guards = new Map<string, SourceGuard>();

interface QueryMigrate {
  status?: string;
  'error-desc'?: string;
}

export class SourceGuard {
  private qmp?: QmpClient;
  private relay?: ThrottledRelay;
  private switchover?: Promise<SwitchoverResult>;
  private resolving?: Promise<SourceResolution>;
  /** What went otherwise than planned while settling, for the controller's journal. */
  readonly notes: string[] = [];

  private constructor(readonly record: SourceRecord) {}

  static async begin(p: Omit<SourceRecord, 'role' | 'guardPid' | 'phase'>): Promise<SourceGuard> {
    const existing = guards.get(p.id);
    if (existing) return existing;
    const guard = new SourceGuard({ ...p, role: 'source', guardPid: process.pid, phase: 'mirroring' });
    await guard.attach();
    const caps = await guard.qmp!.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities');
    guard.record.capabilities = caps.filter((c) => CHANGED_CAPABILITIES.includes(c.capability));
    const params = await guard.qmp!.execute<Record<string, unknown>>('query-migrate-parameters');
    guard.record.parameters = Object.fromEntries(CHANGED_PARAMETERS.filter((k) => k in params).map((k) => [k, params[k]]));
    saveRecord(guard.record);
    guards.set(p.id, guard);
    return guard;
  }

  /** The guard of migration `id` here, or one taken over from the record a vanished agent left. */
  static async find(id: string): Promise<SourceGuard | undefined> {
    const own = guards.get(id);
    if (own) return own;
    const record = await recordToTakeOver(id, 'source');
    if (!record) return undefined;
    const guard = new SourceGuard({ ...record, guardPid: process.pid, settled: false });
    guards.set(id, guard);
    saveRecord(guard.record);
    if (processAlive(record.pid)) await guard.attach().catch(() => undefined);
    return guard;
  }

  static all(): SourceGuard[] {
    return [...guards.values()];
  }

  private async attach(): Promise<void> {
    this.qmp = await acquireQmp(this.record.qmpSocket);
    this.qmp.on('event', (e: QmpEvent) => {
      if (e.event === 'MIGRATION' && e.data.status === 'pre-switchover' && !this.switchover) {
        this.switchover = this.switchOver(e.timestampMs);
      }
    });
  }

  /**
   * At QEMU's pause: complete every mirror (the guest is stopped, so the
   * target's disks are then identical) and let the migration go on at once.
   * On any error the migration is cancelled, which resumes the VM here.
   */
  private async switchOver(pausedAtMs: number): Promise<SwitchoverResult> {
    const qmp = this.qmp!;
    const copied: Record<string, number> = {};
    try {
      if (this.record.finalPass) {
        Object.assign(copied, await finalPass(qmp, this.record.finalPass));
        await qmp.execute('migrate-continue', { state: 'pre-switchover' });
        return { ok: true, copied, pausedToContinueMs: Date.now() - pausedAtMs };
      }
      const completed = this.record.jobs.map((job) => qmp.waitForEvent('BLOCK_JOB_COMPLETED', (e) => e.data.device === job, 30_000));
      for (const c of completed) c.catch(() => undefined);
      await Promise.all(this.record.jobs.map((job) => qmp.execute('block-job-cancel', { device: job })));
      for (const e of await Promise.all(completed)) {
        if (e.data.error) throw new FerryError('MIGRATION_FAILED', `Disk mirror ${text(e.data.device)} failed at the switch-over: ${text(e.data.error)}`);
        copied[text(e.data.device)] = Number(e.data.offset ?? 0);
      }
      await qmp.execute('migrate-continue', { state: 'pre-switchover' });
      return { ok: true, copied, pausedToContinueMs: Date.now() - pausedAtMs };
    } catch (e) {
      await qmp.execute('migrate_cancel').catch(() => undefined);
      return { ok: false, error: messageOf(e), copied, pausedToContinueMs: Date.now() - pausedAtMs };
    }
  }

  private async migrationStatus(): Promise<QueryMigrate> {
    if (!this.qmp || this.qmp.closed) return { status: 'gone' };
    return this.qmp.execute<QueryMigrate>('query-migrate').catch(() => ({ status: 'gone' }));
  }

  /** Waits for the migration to end, as QEMU reports it. */
  async outcome(): Promise<SourceOutcome> {
    for (;;) {
      const m = await this.migrationStatus();
      const status = m.status ?? 'none';
      if (status === 'gone') throw new FerryError('MIGRATION_FAILED', `The source QEMU of VM "${this.record.vm}" went away`, { hint: 'the VM died on the source; start it again from its disks' });
      if (TERMINAL.includes(status) && !(status === 'none' && this.switchover)) {
        const switchover = this.switchover ? await this.switchover : undefined;
        if (status === 'completed' && this.record.phase === 'mirroring') {
          this.record.phase = 'completed';
          saveRecord(this.record);
        }
        return { status: isEndStatus(status) ? status : 'none', error: m['error-desc'] ?? switchover?.error, switchover, relayedBytes: this.relay?.forwarded };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops a migration that has not reached the switch-over yet (past it, QEMU finishes on its own). */
  async cancel(): Promise<string> {
    const { status = 'none' } = await this.migrationStatus();
    const before = ['setup', 'active', 'wait-unplug'].includes(status) || (status === 'pre-switchover' && !this.switchover);
    if (before) await this.qmp!.execute('migrate_cancel').catch(() => undefined);
    return status;
  }

  /**
   * Brings this side to its end. `committed`: the target owns the VM, this
   * QEMU stops (its disks stay). `died`: the target took the VM over and then
   * died; this copy is older than what the guest wrote there and must not run
   * again, so it stops too. `aborted`: the VM stays here, running, with
   * ferry's jobs, nodes and settings removed.
   */
  resolve(verdict: SourceVerdict): Promise<SourceResolution> {
    this.resolving ??= this.settle(verdict);
    return this.resolving;
  }

  private async settle(verdict: SourceVerdict): Promise<SourceResolution> {
    if (!processAlive(this.record.pid)) {
      this.release();
      return 'none';
    }
    if (verdict === 'aborted') {
      await this.cancel();
      await this.waitCancelled();
      await this.rollBack();
      this.record.phase = 'resumed';
    } else {
      await this.stopQemu();
      this.record.phase = 'stopped';
    }
    saveRecord(this.record);
    this.release();
    // A target left alone keeps answering until it knows this side needs it no more.
    if (this.record.beacon) await askBeacon(this.record.beacon, 'done').catch(() => undefined);
    return this.record.phase;
  }

  /**
   * Waits for a cancelled migration to end. One that does not (a migration
   * cancelled while it still connected is the suspect: the cancel finds no
   * connection to shut down) is cancelled again every CANCEL_AGAIN_MS, and
   * each time is noted for the controller's journal.
   */
  private async waitCancelled(): Promise<void> {
    const deadline = Date.now() + CANCEL_WAIT_MS;
    let again = Date.now() + CANCEL_AGAIN_MS;
    while (Date.now() < deadline) {
      const { status = 'none' } = await this.migrationStatus();
      if (TERMINAL.includes(status) || status === 'gone') return;
      if (Date.now() > again) {
        this.notes.push(`the source QEMU's migration was still ${status} ${CANCEL_AGAIN_MS / 1000} s after it was cancelled; cancelled again`);
        await this.qmp?.execute('migrate_cancel').catch(() => undefined);
        again = Date.now() + CANCEL_AGAIN_MS;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.notes.push(`the source QEMU's migration did not end within ${CANCEL_WAIT_MS / 1000} s of its cancel`);
  }

  private async waitTerminal(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const { status = 'none' } = await this.migrationStatus();
      if (TERMINAL.includes(status) || status === 'gone') return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Everything ferry added to the running QEMU goes, and the VM runs. */
  private async rollBack(): Promise<void> {
    const qmp = this.qmp;
    if (!qmp) return;
    for (const job of this.record.jobs) await qmp.execute('block-job-cancel', { device: job, force: true }).catch(() => undefined);
    for (let i = 0; i < 200; i++) {
      const jobs = (await qmp.execute<Array<{ device: string; status: string }>>('query-block-jobs').catch(() => [])).filter((j) => this.record.jobs.includes(j.device));
      if (!jobs.length) break;
      // A warm move's final pass keeps its jobs until dismissed (their bitmaps are already right).
      for (const j of jobs) if (j.status === 'concluded') await qmp.execute('job-dismiss', { id: j.device }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const node of this.record.nbdNodes) await qmp.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
    if (this.record.capabilities?.length) await qmp.execute('migrate-set-capabilities', { capabilities: this.record.capabilities }).catch(() => undefined);
    if (this.record.parameters && Object.keys(this.record.parameters).length) await qmp.execute('migrate-set-parameters', this.record.parameters).catch(() => undefined);
    const state = await resumeAfterMigration(qmp).catch(() => undefined);
    if (state && state !== 'running') this.notes.push(`the VM on the source is ${state}, not running, after the rollback`);
  }

  private async stopQemu(): Promise<void> {
    const pid = this.record.pid;
    if (!(await isQemu(pid))) return;
    await this.qmp?.execute('quit').catch(() => undefined);
    for (let i = 0; i < 100 && (await stillRunning(pid)); i++) await new Promise((r) => setTimeout(r, 50));
    if (await stillRunning(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 100 && (await stillRunning(pid)); i++) await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The NBD connections to the target go through a relay held to `bytesPerSecond`; returns its port. */
  async relayTo(p: { address: string; to: { host: string; port: number }; bytesPerSecond: number }): Promise<number> {
    this.relay ??= await ThrottledRelay.start(p);
    return this.relay.port;
  }

  private release(): void {
    guards.delete(this.record.id);
    this.relay?.close();
    if (this.qmp) releaseQmp(this.record.qmpSocket, this.qmp);
    this.qmp = undefined;
    removeRecord(this.record.id, 'source');
  }

  /** Alone: roll back before the pause; past it, learn the outcome from the target, then act. */
  async controllerLost(): Promise<void> {
    if (this.resolving) {
      await this.resolving.catch(() => undefined);
      return;
    }
    await this.cancel();
    await this.waitTerminal(LONE_VERDICT_WAIT_MS);
    const { status = 'none' } = await this.migrationStatus();
    if (status === 'gone') return this.release();
    if (status !== 'completed') {
      await this.resolve('aborted').catch(() => undefined);
      return;
    }
    const verdict = await this.askTarget(LONE_VERDICT_WAIT_MS);
    if (verdict) await this.resolve(verdict).catch(() => undefined);
    else {
      // Nobody can tell whether the target runs the VM: leave it paused here for `ferry recover`.
      this.record.settled = true;
      saveRecord(this.record);
      if (this.qmp) releaseQmp(this.record.qmpSocket, this.qmp);
      this.qmp = undefined;
      guards.delete(this.record.id);
    }
  }

  private async askTarget(ms: number): Promise<SourceVerdict | undefined> {
    const beacon = this.record.beacon;
    if (!beacon) return undefined;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const phase = await askBeacon(beacon).catch(() => undefined);
      if (phase === 'committed' || phase === 'died') return phase;
      if (phase === 'aborted') return 'aborted';
      await new Promise((r) => setTimeout(r, 500));
    }
    return undefined;
  }
}

/**
 * A warm move's last pass, the guest paused: one backup job per disk of what
 * it wrote since the previous pass. Returns the bytes each job copied.
 */
async function finalPass(qmp: QmpClient, pass: NonNullable<SourceRecord['finalPass']>): Promise<Record<string, number>> {
  const concluded = pass.jobs.map((job) => qmp.waitForEvent('JOB_STATUS_CHANGE', (e) => e.data.id === job && e.data.status === 'concluded', 120_000));
  for (const c of concluded) c.catch(() => undefined);
  await qmp.execute('transaction', { actions: pass.actions });
  await Promise.all(concluded);
  const jobs = (await qmp.execute<Array<{ device: string; len: number; error?: string }>>('query-block-jobs')).filter((j) => pass.jobs.includes(j.device));
  for (const j of jobs) await qmp.execute('job-dismiss', { id: j.device });
  const failed = jobs.find((j) => j.error);
  if (failed) throw new FerryError('MIGRATION_FAILED', `The last pass of ${failed.device} failed at the switch-over: ${failed.error}`);
  return Object.fromEntries(jobs.map((j) => [j.device, j.len]));
}

function isEndStatus(status: string): status is SourceOutcome['status'] {
  return TERMINAL.includes(status);
}

function askBeacon(beacon: { address: string; port: number; token: string }, word?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: beacon.address, port: beacon.port });
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new Error('no answer')), 5000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${beacon.token}${word ? ` ${word}` : ''}\n`));
    socket.on('data', (d: string) => (reply += d));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(String((JSON.parse(reply) as { phase?: string }).phase));
      } catch {
        reject(new Error('no answer'));
      }
    });
  });
}

async function isQemu(pid: number): Promise<boolean> {
  try {
    return /qemu/.test((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? '');
  } catch {
    return false;
  }
}

async function stillRunning(pid: number): Promise<boolean> {
  try {
    return !/\) Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
