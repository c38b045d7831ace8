/**
 * `ferry migrate`: a move from one host to another, journaled, with a final
 * report for humans and scripts. This module connects the hosts' agents,
 * picks the driver whose hypervisor has the VM and the mode (live, warm or
 * cold), and runs that mode's phases (live-phases.ts, warm.ts, cold.ts);
 * after any failure the phases have the driver settle the VM to the one
 * side that owns it at that instant.
 */
import type { HypervisorDriver, LiveSteps, StepContext } from '../drivers/driver.js';
import type { MigrationListener } from '../drivers/progress.js';
import { AgentClient } from '../hosts/agent-client.js';
import { findHost, type Inventory } from '../hosts/inventory.js';
import { liveAgent } from '../hosts/live-agent.js';
import { asFerryError, FerryError } from '../util/errors.js';
import { driverFor } from './drivers.js';
import { Journal } from './journal.js';
import { imagesToResume, coldPhases, type ColdOutcome } from './cold.js';
import { warmPhases, type WarmOutcome, type WarmPass } from './warm.js';
import { livePhases, type LiveOutcome } from './live-phases.js';
import { runPhases, type PhaseTimes } from './phases.js';
import { reportDisks, type ReportDisk } from './report-disks.js';
import type { MigrationSettings } from './settings.js';
import { warn, warnRollbackErrors } from './warnings.js';
import { reportVmFiles } from './vm-files.js';

export interface MigrateRequest extends MigrationSettings {
  vm: string;
  from: string;
  to: string;
  inventory: Inventory;
  bandwidthMiB?: number;
  /** qemu or libvirt; by default the one whose hypervisor has the VM on the source. */
  driver?: string;
  /** live (the default for a running VM), cold (the default for a shut-off one) or warm. */
  mode?: 'live' | 'cold' | 'warm';
  /** libvirt's name for a cold move with --shutdown. */
  offline?: boolean;
  signal: AbortSignal;
  listener: MigrationListener;
}

export interface MigrationReport {
  id: string;
  /** precopied: --precopy-only ended with the target in step and the VM running on the source. */
  status: 'completed' | 'precopied' | 'failed' | 'aborted';
  vm: string;
  from: string;
  to: string;
  /** The driver that moved it: qemu or libvirt. */
  driver?: string;
  /** live; cold (the VM did not run while its disks were copied); warm (disks pre-copied while it ran, then a short cut-over). */
  mode?: 'live' | 'cold' | 'warm';
  /** Each disk: its source and where it went (a target LV ferry created says so). */
  disks?: ReportDisk[];
  /** The VM's own files besides its disks (a UEFI variable store), carried to the same path. */
  files?: ReturnType<typeof reportVmFiles>;
  /** Warm: each pass, in order (pre-copy, catch-up, and the last one at the pause). */
  passes?: WarmPass[];
  /** Warm: the bytes of the last pass, made while the guest was paused. */
  final_pass_bytes?: number;
  /** Warm --fix-guest: each change ferry's guest fixes made on the target's copy ("operation: file"). */
  guest_fixes?: string[];
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
  // keep_source_definition: what `ferry recover` needs to finish a move whose controller went away after the commit.
  journal.record('start', {
    kind: 'migrate',
    vm: req.vm,
    from: req.from,
    to: req.to,
    bandwidth_mib: req.bandwidthMiB,
    max_downtime_ms: req.maxDowntimeMs,
    keep_source_definition: req.keepSourceDefinition || undefined,
  });
  const report: MigrationReport = { id: journal.id, status: 'failed', vm: req.vm, from: req.from, to: req.to, total_ms: 0, ram_bytes: 0, disk_bytes: 0, phases: {}, journal: journal.path };
  const agents: AgentClient[] = [];
  let steps: LiveSteps | undefined;
  try {
    if (req.from === req.to) {
      throw new FerryError('SAME_HOST', `Source and target are both "${req.from}"`, { hint: 'name another host with --to' });
    }
    const fromHost = findHost(req.inventory, req.from);
    const toHost = findHost(req.inventory, req.to);
    const sourceConnecting = AgentClient.connect(fromHost);
    // Asked of the source while the target's agent still starts (ssh, node); asked again below of a new agent if this one was lost.
    const found = sourceConnecting.then((agent) => ({ agent, found: driverFor(agent, req.vm, req.driver) }));
    found.then((f) => f.found).catch(() => undefined);
    // Keep whichever agent did connect, so it is closed even when the other host is unreachable.
    const connected = await Promise.allSettled([sourceConnecting, AgentClient.connect(toHost)]);
    for (const c of connected) if (c.status === 'fulfilled') agents.push(c.value);
    for (const c of connected) if (c.status === 'rejected') throw c.reason;
    let [source, target] = agents as [AgentClient, AgentClient];
    journal.record('agents', { source: { host: source.host.name, pid: source.facts.agentPid }, target: { host: target.host.name, pid: target.facts.agentPid } });
    // Nothing has begun yet: an agent lost here is simply started again.
    [source, target] = await Promise.all([liveAgent(fromHost, source), liveAgent(toHost, target)]);
    for (const agent of [source, target]) if (!agents.includes(agent)) agents.push(agent);
    const early = await found;
    const { driver, found: foundVm } = await (early.agent === source ? early.found : driverFor(source, req.vm, req.driver)).catch(async (e: unknown) => {
      if (!(e instanceof FerryError && e.code === 'AGENT_GONE')) throw e;
      source = await liveAgent(fromHost, source);
      agents.push(source);
      return driverFor(source, req.vm, req.driver);
    });
    const state = foundVm?.state;
    report.driver = driver.name;
    journal.record('driver', { driver: driver.name });
    const context: StepContext = {
      vmName: req.vm,
      source,
      target,
      settings: {
        bandwidthBytes: req.bandwidthMiB ? req.bandwidthMiB * 1024 * 1024 : undefined,
        maxDowntimeMs: req.maxDowntimeMs,
        autoConverge: req.autoConverge,
        mirrorMode: req.mirrorMode,
        keepSourceDefinition: req.keepSourceDefinition,
        copySecrets: req.copySecrets,
        reboot: req.reboot,
      },
      signal: req.signal,
      listener: req.listener,
      journal,
    };
    if (req.mode === 'warm' || req.precopyOnly || req.cutover) {
      if (state === 'shut off') throw new FerryError('VM_NOT_RUNNING', `VM "${req.vm}" is shut off on "${req.from}"; a warm move copies a running VM`, { hint: 'move it with --mode cold' });
      report.mode = 'warm';
      journal.record('mode', { mode: 'warm', state, precopy_only: req.precopyOnly, cutover: req.cutover });
      try {
        await moveWarm(driver, context, journal, req, report, (s) => (steps = s));
      } finally {
        keepAgents(agents, context);
      }
      return finishReport(report, journal, t0);
    }
    if (req.mode === 'cold' || req.offline || state === 'shut off') {
      if (state !== 'shut off' && !req.shutdown && !req.offline) {
        throw new FerryError('VM_RUNNING', `VM "${req.vm}" runs on "${req.from}"; a cold move needs it powered off`, {
          hint: 'shut it down first, or pass --shutdown to have ferry power it off (--force-off to cut its power if it does not)',
        });
      }
      report.mode = 'cold';
      journal.record('mode', { mode: 'cold', state });
      try {
        await moveCold(driver, context, journal, req, report);
      } finally {
        keepAgents(agents, context);
      }
      return finishReport(report, journal, t0);
    }
    report.mode = 'live';
    journal.record('mode', { mode: 'live', state });
    steps = driver.live(context, foundVm);
    const outcome: LiveOutcome = {};
    const result = await runPhases(livePhases(steps, context, req, outcome), journal, (phase) => req.listener({ type: 'phase', phase }));
    warnRollbackErrors(report, result.rollbackErrors);
    report.phases = result.times;
    if (outcome.plans) report.disks = reportDisks(outcome.plans);
    if (outcome.files?.length) report.files = reportVmFiles(outcome.files);
    Object.assign(report, {
      downtime_ms: steps.stats.downtimeMs,
      qemu_downtime_ms: steps.stats.hypervisorDowntimeMs,
      ram_bytes: steps.stats.ramBytes,
      disk_bytes: steps.stats.diskBytes + (outcome.copiedBytes ?? 0),
      disk_zero_bytes: steps.stats.diskZeroBytes,
    });
    if (result.error?.code === 'VM_DIED' || outcome.settlement?.outcome === 'died') {
      report.status = 'failed';
      report.failed_phase = result.failedPhase;
      report.source_running = false;
      report.error = {
        code: 'VM_DIED',
        message: `VM "${req.vm}" died on "${req.to}" after it had taken the VM over${result.error ? ` (${result.error.message})` : ''}`,
        hint: `its disks on "${req.to}" hold everything it wrote: start it there again; the older copy on "${req.from}" was stopped and its disks kept`,
      };
    } else if (result.error && steps.committed) {
      // Failed after the commit point: the target owns the VM and runs it; what failed was tidying up.
      report.status = 'completed';
      warn(report, `${result.error.message} (in phase "${result.failedPhase}", after the VM had moved; settled)`);
    } else if (result.error) {
      report.status = result.error.code === 'ABORTED' ? 'aborted' : 'failed';
      report.failed_phase = result.failedPhase;
      report.error = { code: result.error.code, message: result.error.message, hint: result.error.hint };
      const sourceAgent = await liveAgent(fromHost, steps.agents[0]).catch(() => undefined);
      if (sourceAgent) agents.push(sourceAgent);
      report.source_running = sourceAgent ? await steps.runsOn(sourceAgent) : false;
      if (!report.source_running && outcome.described && sourceAgent && !(await steps.existsOn(sourceAgent))) {
        // Its own process went away on the source: nothing could have saved it.
        report.error = {
          code: 'VM_DIED',
          message: `VM "${req.vm}" died on "${req.from}" during the migration: its process exited (${result.error.message})`,
          hint: `nothing was left on "${req.to}"; its disks on "${req.from}" are untouched: start it there again${whyDied(steps.hypervisorLog(), req.from)}`,
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
    for (const a of new Set([...agents, ...(steps?.agents ?? [])])) a.close();
  }
  return finishReport(report, journal, t0);
}

function finishReport(report: MigrationReport, journal: Journal, t0: number): MigrationReport {
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

/** Runs a cold move into `report`. */
async function moveCold(driver: HypervisorDriver, context: StepContext, journal: Journal, req: MigrateRequest, report: MigrationReport): Promise<void> {
  if (!driver.cold) throw new FerryError('USAGE', `The ${driver.name} driver has no cold moves`, { hint: 'use --mode live' });
  const steps = driver.cold(context);
  const outcome: ColdOutcome = { diskBytes: 0 };
  const resumable = imagesToResume(req.vm, req.from, req.to, 'cold');
  const result = await runPhases(coldPhases(steps, context, req, outcome, resumable), journal, (phase) => req.listener({ type: 'phase', phase }));
  warnRollbackErrors(report, result.rollbackErrors);
  report.phases = result.times;
  report.disk_bytes = outcome.diskBytes;
  if (outcome.plans) report.disks = reportDisks(outcome.plans);
  if (outcome.files?.length) report.files = reportVmFiles(outcome.files);
  if (outcome.targetNotRunning) warn(report, `VM "${req.vm}" is ${outcome.targetNotRunning} on "${req.to}" since its start, not running: its hypervisor's log there says why`);
  if (!result.error) {
    report.status = 'completed';
  } else if (outcome.committed) {
    report.status = 'completed';
    warn(report, `${result.error.message} (in phase "${result.failedPhase}", after the VM was made on "${req.to}")`);
  } else {
    report.status = result.error.code === 'ABORTED' ? 'aborted' : 'failed';
    report.failed_phase = result.failedPhase;
    report.error = { code: result.error.code, message: result.error.message, hint: result.error.hint };
    if (result.failedPhase === 'copy') report.error.hint = `${result.error.hint ? `${result.error.hint}; ` : ''}what was copied is kept on "${req.to}": run the same command again to continue`;
  }
}

/** Runs a warm move into `report`; `use` learns its steps, so that their agents are closed with the others. */
async function moveWarm(driver: HypervisorDriver, context: StepContext, journal: Journal, req: MigrateRequest, report: MigrationReport, use: (steps: LiveSteps) => void): Promise<void> {
  if (!driver.warm) throw new FerryError('USAGE', `The ${driver.name} driver has no warm moves yet`, { hint: 'use --mode live or --mode cold' });
  const steps = driver.warm(context);
  use(steps);
  const outcome: WarmOutcome = { passes: [] };
  const resumable = imagesToResume(req.vm, req.from, req.to, 'warm');
  const cold = req.reboot ? driver.cold?.(context) : undefined;
  const result = await runPhases(warmPhases(steps, context, req, outcome, resumable, cold), journal, (phase) => req.listener({ type: 'phase', phase }));
  warnRollbackErrors(report, result.rollbackErrors);
  report.phases = result.times;
  if (outcome.plans) report.disks = reportDisks(outcome.plans);
  if (outcome.files?.length) report.files = reportVmFiles(outcome.files);
  if (outcome.lastPassBytes !== undefined) steps.stats.lastPassBytes = outcome.lastPassBytes;
  else if (steps.stats.lastPassBytes !== undefined) outcome.passes.push({ pass: outcome.passes.length + 1, kind: 'changes', stage: 'final', bytes: steps.stats.lastPassBytes, ms: 0 });
  report.passes = outcome.passes;
  report.final_pass_bytes = steps.stats.lastPassBytes;
  report.guest_fixes = outcome.guestFixes;
  report.disk_bytes = outcome.passes.reduce((s, p) => s + p.bytes, 0);
  Object.assign(report, { downtime_ms: steps.stats.downtimeMs, qemu_downtime_ms: steps.stats.hypervisorDowntimeMs, ram_bytes: steps.stats.ramBytes });
  if (!result.error) {
    report.status = req.precopyOnly ? 'precopied' : 'completed';
    return;
  }
  if (steps.committed || outcome.committed) {
    report.status = 'completed';
    warn(report, `${result.error.message} (in phase "${result.failedPhase}", after the VM had moved; settled)`);
    return;
  }
  report.status = result.error.code === 'ABORTED' ? 'aborted' : 'failed';
  report.failed_phase = result.failedPhase;
  report.error = { code: result.error.code, message: result.error.message, hint: result.error.hint };
  if (outcome.passes.length) {
    report.error.hint = `${result.error.hint ? `${result.error.hint}; ` : ''}the pre-copy is kept on "${req.to}": run the same command again to continue from it`;
  }
  const sourceAgent = await liveAgent(findHost(req.inventory, req.from), steps.agents[0]).catch(() => undefined);
  report.source_running = sourceAgent ? await steps.runsOn(sourceAgent) : false;
  if (sourceAgent && sourceAgent !== steps.agents[0]) sourceAgent.close();
}

/** The steps may have connected new agents in place of lost ones: closed with the others. */
function keepAgents(agents: AgentClient[], context: StepContext): void {
  for (const a of [context.source, context.target]) if (!agents.includes(a)) agents.push(a);
}

/** Where to read why a VM's QEMU ended, for a hint. */
function whyDied(log: string | undefined, host: string): string {
  return log ? `; why its QEMU ended may be in ${host}:${log}` : '';
}
