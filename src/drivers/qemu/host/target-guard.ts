/**
 * The target host's side of a live migration. Until the incoming migration
 * completes, the source owns the VM and everything listed here (the incoming
 * QEMU, the images and files it made) is ferry's to remove; the moment QEMU
 * reports the incoming migration completed, the target owns the VM and
 * nothing here may destroy it. The guard records that moment on disk, and
 * acts on it alone when the controller goes away: it keeps (and resumes) a
 * committed VM, and destroys an incoming one whose migration cannot finish.
 * A beacon on the migration address tells the source's agent which it was.
 */
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { QmpClient, QmpEvent } from '../../../qmp/client.js';
import { removeLv } from '../../../storage/lvm.js';
import { FerryError } from '../../../util/errors.js';
import { processAlive } from '../../../util/exec.js';
import { recordToTakeOver, removeRecord, saveRecord, type TargetRecord } from './migration-record.js';
import { acquireQmp, releaseQmp } from './qmp-pool.js';

export type TargetOutcome = 'committed' | 'aborted' | 'died' | 'incoming' | 'none';

/** How long a lone guard waits for an incoming migration already streaming to end by itself. */
const LONE_INCOMING_WAIT_MS = 10 * 60_000;
/** How long a lone guard keeps answering the source's agent after the outcome. */
const BEACON_LINGER_MS = 2 * 60_000;

const guards = new Map<string, TargetGuard>();

export class TargetGuard {
  private qmp?: QmpClient;
  private beacon?: Server;
  private settled?: Promise<TargetOutcome>;
  /** The incoming QEMU's start under way, if any: a settling waits for it. */
  private starting?: Promise<unknown>;
  private readonly changed = new Set<() => void>();
  /** The source began streaming RAM: it may finish sending before learning the outcome, so it must be able to ask. */
  private streamed = false;
  private sourceHeard = false;
  /** Called once the source's agent has heard the outcome from the beacon. */
  private sourceTold?: () => void;

  private readonly onMonitorClose = (): void => this.qemuGone();

  private constructor(readonly record: TargetRecord) {}

  static begin(p: { id: string; vm: string; token: string }): TargetGuard {
    const existing = guards.get(p.id);
    if (existing) return existing;
    const guard = new TargetGuard({ id: p.id, role: 'target', vm: p.vm, guardPid: process.pid, phase: 'preparing', files: [], token: p.token });
    saveRecord(guard.record);
    guards.set(p.id, guard);
    return guard;
  }

  /** The guard of migration `id` in this agent, or one taken over from the record a vanished agent left. */
  static async find(id: string): Promise<TargetGuard | undefined> {
    const own = guards.get(id);
    if (own) return own;
    const record = await recordToTakeOver(id, 'target');
    if (!record) return undefined;
    const guard = new TargetGuard({ ...record, guardPid: process.pid, settled: false });
    guards.set(id, guard);
    if (!isTerminal(record.phase)) {
      saveRecord(guard.record);
      if (guard.record.pid && guard.record.qmpSocket) await guard.watch().catch(() => guard.qemuGone());
    }
    return guard;
  }

  static all(): TargetGuard[] {
    return [...guards.values()];
  }

  claim(p: { files?: string[]; lvs?: Array<{ vg: string; lv: string }>; pid?: number; qmpSocket?: string }): void {
    this.record.files.push(...(p.files ?? []));
    if (p.lvs?.length) this.record.lvs = [...(this.record.lvs ?? []), ...p.lvs];
    if (p.pid) this.record.pid = p.pid;
    if (p.qmpSocket) this.record.qmpSocket = p.qmpSocket;
    saveRecord(this.record);
  }

  /**
   * Starts the incoming QEMU with `start` and claims its pid at once. The
   * controller may be lost while the start runs, and this agent then settles
   * alone: the settling waits for the start, else it would remove the files
   * before QEMU makes them and miss the QEMU. Once the guard settles or has
   * settled, nothing is started.
   */
  startIncoming(start: () => Promise<{ pid: number }>): Promise<{ pid: number }> {
    if (this.settled || isTerminal(this.record.phase)) {
      return Promise.reject(new FerryError('MIGRATION_FAILED', `Migration ${this.record.id} was settled on this host: its target QEMU is not started`));
    }
    const started = start().then((r) => {
      this.claim({ pid: r.pid });
      return r;
    });
    this.starting = started.catch(() => undefined);
    return started;
  }

  /** The incoming QEMU runs: watch it for the commit point, and answer the source's agent on `address`. */
  async incoming(address: string): Promise<{ port: number }> {
    this.record.phase = 'incoming';
    await this.watch();
    const port = await this.listen(address);
    this.record.beacon = { address, port };
    saveRecord(this.record);
    return { port };
  }

  private async watch(): Promise<void> {
    if (this.qmp || !this.record.qmpSocket) return;
    this.qmp = await acquireQmp(this.record.qmpSocket);
    this.qmp.on('event', (e: QmpEvent) => {
      if (e.event === 'MIGRATION' && e.data.status === 'active') this.streamed = true;
      if (e.event === 'MIGRATION' && e.data.status === 'completed') this.commit();
    });
    this.qmp.once('close', this.onMonitorClose);
    // It may have completed before we listened (a guard taken over from a record).
    const status = await this.qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'inmigrate') this.commit();
  }

  private listen(address: string): Promise<number> {
    if (this.beacon) return Promise.resolve(this.record.beacon!.port);
    const server = createServer((socket) => {
      socket.setEncoding('utf8');
      let line = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: string) => {
        line += chunk;
        if (line.length > 256) return void socket.destroy();
        if (!line.includes('\n')) return;
        const [token, word] = line.trim().split(' ');
        if (token !== this.record.token) return void socket.destroy();
        socket.end(JSON.stringify({ phase: this.record.phase }) + '\n');
        // The source's agent has settled its side (`done`), or has just heard an outcome it will act on.
        if (word === 'done' || (this.record.phase !== 'incoming' && this.record.phase !== 'preparing')) {
          this.sourceHeard = true;
          this.sourceTold?.();
        }
      });
    });
    this.beacon = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : 0);
      });
    });
  }

  private setPhase(phase: TargetRecord['phase']): void {
    if (this.record.phase === phase) return;
    this.record.phase = phase;
    saveRecord(this.record);
    for (const f of this.changed) f();
  }

  /** The commit point: from here on the target owns the VM. */
  private commit(): void {
    if (this.record.phase === 'incoming' || this.record.phase === 'preparing') this.setPhase('committed');
  }

  private qemuGone(): void {
    this.qmp = undefined;
    // Only the monitor connection closed (ours, released): QEMU itself is still there.
    if (this.record.pid && processAlive(this.record.pid) && !isZombie(this.record.pid)) return;
    if (this.record.phase === 'committed') this.setPhase('died');
    else if (this.record.phase === 'incoming' || this.record.phase === 'preparing') void this.removeFiles().then(() => this.setPhase('aborted'));
  }

  /** Lets go of the VM's monitor without taking that for QEMU's end. */
  private releaseMonitor(): void {
    const qmp = this.qmp;
    this.qmp = undefined;
    if (!qmp || !this.record.qmpSocket) return;
    qmp.off('close', this.onMonitorClose);
    releaseQmp(this.record.qmpSocket, qmp);
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.changed.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.changed.add(done);
    });
  }

  /**
   * Brings this side to its end and says which: a committed VM is kept and
   * running; anything short of the commit point is destroyed if `abort`,
   * else waited for. An incoming migration already streaming is left to
   * finish (the source's agent cancels it if it must) for up to `waitMs`.
   */
  resolve(p: { abort: boolean; waitMs?: number }): Promise<TargetOutcome> {
    this.settled ??= this.settle(p).finally(() => (this.settled = undefined));
    return this.settled;
  }

  private async settle(p: { abort: boolean; waitMs?: number }): Promise<TargetOutcome> {
    await this.starting;
    const deadline = Date.now() + (p.waitMs ?? LONE_INCOMING_WAIT_MS);
    for (;;) {
      const phase = this.record.phase;
      if (phase === 'committed') {
        await this.keep();
        return 'committed';
      }
      if (phase === 'aborted' || phase === 'died') return phase;
      const expired = Date.now() > deadline;
      if (!p.abort && expired) return 'incoming';
      if (p.abort && (expired || !(await this.incomingStreaming()))) {
        await this.destroy();
        continue;
      }
      await this.waitForChange(500);
    }
  }

  private async incomingStreaming(): Promise<boolean> {
    if (!this.qmp) return false;
    const m = await this.qmp.execute<{ status?: string }>('query-migrate').catch(() => undefined);
    const streaming = m?.status === 'active' || m?.status === 'device';
    if (streaming) this.streamed = true;
    return streaming;
  }

  /** The VM is the target's now: running, with nothing of the migration left in its QEMU. */
  private async keep(): Promise<void> {
    const qmp = this.qmp;
    if (!qmp) return;
    await qmp.execute('nbd-server-stop').catch(() => undefined);
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: false }] }).catch(() => undefined);
    const status = await qmp.execute<{ status: string }>('query-status').catch(() => undefined);
    if (status && status.status !== 'running') await qmp.execute('cont').catch(() => undefined);
  }

  /** Kills the incoming QEMU (never a committed one) and removes what ferry made. */
  private async destroy(): Promise<void> {
    const pid = this.record.pid;
    if (pid && processAlive(pid)) {
      const status = this.qmp ? await this.qmp.execute<{ status: string }>('query-status').catch(() => undefined) : undefined;
      if (status && status.status !== 'inmigrate') return this.commit();
      if (!(await isIncomingQemu(pid))) throw new FerryError('INTERNAL', `Process ${pid} is not the incoming QEMU of migration ${this.record.id}; left alone`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 100 && (await stillRunning(pid)); i++) await new Promise((r) => setTimeout(r, 50));
    }
    await this.removeFiles();
    this.setPhase('aborted');
  }

  private async removeFiles(): Promise<void> {
    for (const f of this.record.files) await rm(f, { force: true }).catch(() => undefined);
    for (const v of this.record.lvs ?? []) await removeLv(v.vg, v.lv).catch(() => undefined);
  }

  /** The controller is done with this side: stop answering and forget the record. */
  release(): void {
    this.close();
    removeRecord(this.record.id, 'target');
  }

  private close(): void {
    guards.delete(this.record.id);
    this.beacon?.close();
    this.beacon = undefined;
    this.releaseMonitor();
  }

  /** Alone: reach the right end, answer the source's agent until it has heard, then forget. */
  async controllerLost(): Promise<void> {
    const heard = new Promise<void>((resolve) => (this.sourceTold = resolve));
    let outcome: TargetOutcome | undefined;
    // A resolve the controller had started may have been waiting for the commit only: go on until there is an owner.
    do outcome = await this.resolve({ abort: true }).catch(() => undefined);
    while (outcome === 'incoming');
    // The VM's monitor is free for whoever comes next; only the beacon stays.
    this.releaseMonitor();
    this.record.settled = true;
    saveRecord(this.record);
    if (outcome && this.beacon && !this.sourceHeard && (outcome !== 'aborted' || this.streamed)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([heard, new Promise<void>((r) => (timer = setTimeout(r, BEACON_LINGER_MS)))]);
      clearTimeout(timer);
    }
    this.release();
  }
}

function isTerminal(phase: TargetRecord['phase']): boolean {
  return phase === 'aborted' || phase === 'died';
}

async function isIncomingQemu(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').includes('-incoming');
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function stillRunning(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}
