/**
 * `ferry migrate`: a live migration from one host to another, journaled,
 * with its phases, rollback and a final report for humans and scripts.
 */
import { QemuLiveMigration } from '../drivers/qemu/live.js';
import { RemoteQmp } from '../drivers/qemu/remote-qmp.js';
import { liveAgent } from '../drivers/qemu/settle.js';
import { AgentClient } from '../hosts/agent-client.js';
import { findHost, type Inventory } from '../hosts/inventory.js';
import { asFerryError, FerryError } from '../util/errors.js';
import { Journal } from './journal.js';
import { runPhases, type PhaseTimes } from './phases.js';
import type { MigrationListener } from './progress.js';
import type { MigrationSettings } from './settings.js';

export interface MigrateRequest extends MigrationSettings {
  vm: string;
  from: string;
  to: string;
  inventory: Inventory;
  bandwidthMiB?: number;
  signal: AbortSignal;
  listener: MigrationListener;
}

export interface MigrationReport {
  id: string;
  status: 'completed' | 'failed' | 'aborted';
  vm: string;
  from: string;
  to: string;
  /** Guest pause: source stopped -> target resumed, from QEMU's event timestamps. */
  downtime_ms?: number;
  /** QEMU's own downtime figure (the source side of the pause). */
  qemu_downtime_ms?: number;
  total_ms: number;
  ram_bytes: number;
  disk_bytes: number;
  /** Under --bandwidth: bytes of zeros the mirrors skipped on the wire (sent as write-zeroes requests). */
  disk_zero_bytes?: number;
  phases: PhaseTimes;
  failed_phase?: string;
  error?: { code: string; message: string; hint?: string };
  /** After a failure: whether the VM was verified running (not paused) on the source. */
  source_running?: boolean;
  /** Completed, but something after the commit point needed settling. */
  warnings?: string[];
  journal: string;
}

/** Whether VM `name` runs, and is not paused, on the agent's host. */
async function sourceRunning(agent: AgentClient | undefined, name: string): Promise<boolean> {
  if (!agent) return false;
  try {
    const proc = (await agent.call('qemu.list', undefined)).find((p) => p.name === name);
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

export function parseDiskMap(pairs: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) {
      throw new FerryError('USAGE', `Invalid --disk-map "${pair}"`, { hint: 'write --disk-map SRC=DST, e.g. --disk-map /var/lib/vm/a.qcow2=/dev/vg0/a' });
    }
    map.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return map;
}

export async function migrateLive(req: MigrateRequest): Promise<MigrationReport> {
  const t0 = performance.now();
  const journal = new Journal('migrate', req.vm);
  journal.record('start', { kind: 'live', vm: req.vm, from: req.from, to: req.to, bandwidth_mib: req.bandwidthMiB, max_downtime_ms: req.maxDowntimeMs });
  const report: MigrationReport = { id: journal.id, status: 'failed', vm: req.vm, from: req.from, to: req.to, total_ms: 0, ram_bytes: 0, disk_bytes: 0, phases: {}, journal: journal.path };
  const agents: AgentClient[] = [];
  let migration: QemuLiveMigration | undefined;
  try {
    if (req.from === req.to) {
      throw new FerryError('SAME_HOST', `Source and target are both "${req.from}"`, { hint: 'name another host with --to' });
    }
    const fromHost = findHost(req.inventory, req.from);
    const toHost = findHost(req.inventory, req.to);
    // Keep whichever agent did connect, so it is closed even when the other host is unreachable.
    const connected = await Promise.allSettled([AgentClient.connect(fromHost), AgentClient.connect(toHost)]);
    for (const c of connected) if (c.status === 'fulfilled') agents.push(c.value);
    for (const c of connected) if (c.status === 'rejected') throw c.reason;
    const [source, target] = agents as [AgentClient, AgentClient];
    journal.record('agents', { source: { host: source.host.name, pid: source.facts.agentPid }, target: { host: target.host.name, pid: target.facts.agentPid } });
    const { vm, from, to, inventory, bandwidthMiB, ...settings } = req;
    migration = new QemuLiveMigration({
      ...settings,
      vmName: vm,
      source,
      target,
      bandwidthBytes: bandwidthMiB ? bandwidthMiB * 1024 * 1024 : undefined,
      journal,
    });
    const result = await runPhases(migration.phases(), journal, (phase) => req.listener({ type: 'phase', phase }));
    report.phases = result.times;
    Object.assign(report, {
      downtime_ms: migration.stats.downtimeMs,
      qemu_downtime_ms: migration.stats.qemuDowntimeMs,
      ram_bytes: migration.stats.ramBytes,
      disk_bytes: migration.stats.diskBytes,
      disk_zero_bytes: migration.stats.diskZeroBytes,
    });
    if (result.error?.code === 'VM_DIED' || migration.settlement?.outcome === 'died') {
      report.status = 'failed';
      report.failed_phase = result.failedPhase;
      report.source_running = false;
      report.error = {
        code: 'VM_DIED',
        message: `VM "${req.vm}" died on "${req.to}" after it had taken the VM over${result.error ? ` (${result.error.message})` : ''}`,
        hint: `its disks on "${req.to}" hold everything it wrote: start it there again; the older copy on "${req.from}" was stopped and its disks kept`,
      };
    } else if (result.error && migration.committed) {
      // Failed after the commit point: the target owns the VM and runs it; what failed was tidying up.
      report.status = 'completed';
      report.warnings = [`${result.error.message} (in phase "${result.failedPhase}", after the VM had moved; settled)`];
    } else if (result.error) {
      report.status = result.error.code === 'ABORTED' ? 'aborted' : 'failed';
      report.failed_phase = result.failedPhase;
      report.error = { code: result.error.code, message: result.error.message, hint: result.error.hint };
      const sourceAgent = await liveAgent(fromHost, migration.agents[0]).catch(() => undefined);
      if (sourceAgent) agents.push(sourceAgent);
      report.source_running = await sourceRunning(sourceAgent, req.vm);
      if (!report.source_running && migration.vmInfo && sourceAgent && !(await sourceAgent.call('qemu.list', undefined)).some((p) => p.name === req.vm)) {
        // Its own QEMU went away on the source: nothing could have saved it.
        report.error = {
          code: 'VM_DIED',
          message: `VM "${req.vm}" died on "${req.from}" during the migration: its QEMU exited (${result.error.message})`,
          hint: `nothing was left on "${req.to}"; its disks on "${req.from}" are untouched: start it there again`,
        };
      }
    } else {
      report.status = 'completed';
    }
  } catch (e) {
    const err = asFerryError(e);
    report.status = err.code === 'ABORTED' ? 'aborted' : 'failed';
    report.error = { code: err.code, message: err.message, hint: err.hint };
  } finally {
    for (const a of new Set([...agents, ...(migration?.agents ?? [])])) a.close();
  }
  report.total_ms = Math.round(performance.now() - t0);
  journal.record('end', {
    status: report.status,
    error: report.error?.message,
    code: report.error?.code,
    downtime_ms: report.downtime_ms,
    total_ms: report.total_ms,
    ram_bytes: report.ram_bytes,
    disk_bytes: report.disk_bytes,
    phases: report.phases,
  });
  return report;
}
