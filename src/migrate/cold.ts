/**
 * The phases of a cold move (seed 000's stopped-guest copy, seed 002's
 * `virsh migrate --offline --persistent`): the VM does not run while its
 * disks are copied with the sync engine (verified, and resumable: the
 * images an interrupted move made on the target are kept, and the same
 * command continues into them from their checkpoints). A running VM is
 * powered off first, with --shutdown. The VM is then made on the target and
 * started there (the commit point), and only then removed from the source;
 * a failure before the start leaves it, and starts it again if it ran, on
 * the source.
 */
import { crossesToTarget, type DiskPlan, type ColdSteps, type StepContext } from '../drivers/driver.js';
import type { DiskProgress } from '../drivers/progress.js';
import { checkAuxFiles, checkDistinctHosts, checkMemory } from './checks.js';
import { copyDiskToTarget } from './disk-copy.js';
import { journalEntries, readHistory } from './journal.js';
import type { Phase } from './phases.js';
import { createdEntry, createTargetImage, planDisks } from './plan.js';
import { keepOrDeleteSourceDisks } from './source-disks.js';
import type { MigrationSettings } from './settings.js';
import { carryVmFiles, keepOrDeleteSourceVmFiles, keptForRerun, planVmFiles, type VmFilePlan } from './vm-files.js';

/** How long a guest gets to power off when asked, unless --shutdown-timeout says otherwise. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 120_000;

export interface ColdOutcome {
  described?: boolean;
  /** ferry powered the VM off on the source. */
  stopped?: boolean;
  /** The VM ran before the move (it was shut down for it). */
  wasRunning?: boolean;
  /** The target has the VM's definition and the source no longer runs it: from here the target owns it. */
  committed?: boolean;
  diskBytes: number;
  /** The VM's state on the target after its start, when it is not running there. */
  targetNotRunning?: string;
  /** The plan the check made, for the report. */
  plans?: DiskPlan[];
  /** The VM's own files besides its disks (a UEFI variable store), as the check planned them. */
  files?: VmFilePlan[];
}

/** Target images an earlier, unfinished cold (or warm) move of the same VM between the same hosts made: a new run continues into them. */
export function imagesToResume(vm: string, from: string, to: string, mode: 'cold' | 'warm'): Set<string> {
  const paths = new Set<string>();
  for (const item of readHistory()) {
    if (item.vm !== vm || item.from !== from || item.to !== to || item.status === 'completed') continue;
    const entries = journalEntries(item.id);
    if (!entries.some((e) => e.step === 'mode' && e.mode === mode)) continue;
    for (const e of entries) if (e.step === 'created' && typeof e.path === 'string') paths.add(e.path);
    // A copy ferry's guest fixes changed no longer follows the source: never continue into it.
    for (const e of entries) if ((e.step === 'guest-fixing' || e.step === 'guest-fixed') && typeof e.path === 'string') paths.delete(e.path);
  }
  return paths;
}

export function coldPhases(steps: ColdSteps, context: StepContext, settings: MigrationSettings, outcome: ColdOutcome, resumable: ReadonlySet<string>): Phase[] {
  const { source, target, journal, listener } = context;
  const log = (message: string): void => {
    listener({ type: 'log', message });
    journal.record('log', { message });
  };
  let plans: DiskPlan[] = [];
  return [
    {
      name: 'check',
      run: async () => {
        checkDistinctHosts(source, target);
        const vm = await steps.describe();
        outcome.described = true;
        outcome.wasRunning = vm.state !== 'shut off';
        checkMemory(vm, target);
        await checkAuxFiles(vm, source, target);
        [plans, outcome.files] = await Promise.all([
          planDisks(vm, source, target, { diskMap: settings.diskMap, force: settings.force, log, resumable, createLv: settings.createLv, reuseIdentical: true }),
          planVmFiles(vm, source, target, { force: settings.force, resumable, log }),
          steps.checkTarget(vm),
        ]);
        await steps.checkPlans?.(plans);
        outcome.plans = plans;
        log(`checked: ${vm.name} (${vm.state}, ${vm.disks.length} disk${vm.disks.length === 1 ? '' : 's'}) ${source.host.name} -> ${target.host.name}, offline`);
      },
    },
    {
      name: 'stop',
      run: async () => {
        if (!outcome.wasRunning) return;
        log(`powering ${context.vmName} off on ${source.host.name}`);
        await steps.stopSource({ timeoutMs: settings.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS, forceOff: !!settings.forceOff });
        outcome.stopped = true;
      },
      rollback: async () => {
        // Also after a stop that failed: the power-off may have been asked for, and the agent that held it lost.
        if (outcome.wasRunning && !outcome.committed) await steps.startSource();
      },
    },
    {
      // No rollback: what was copied stays for the next run to continue from.
      name: 'copy',
      run: async () => {
        await copyDisks(plans, context, outcome);
        outcome.diskBytes += await carryVmFiles(outcome.files ?? [], context, keptForRerun(context), log);
      },
    },
    {
      name: 'define',
      run: () => steps.defineTarget(plans),
      rollback: async () => {
        if (!outcome.committed) await steps.undefineTarget();
      },
    },
    {
      name: 'start',
      run: async () => {
        // Before the target may run it: the source's agent must not start the older copy again from here on.
        if (outcome.stopped) await steps.releaseSource();
        if (settings.noStart) log(`made on ${target.host.name}, not started (--no-start)`);
        else {
          await steps.startTarget();
          log(`started on ${target.host.name}`);
        }
        // From here the target holds the VM: nothing may bring the source's copy back.
        outcome.committed = true;
        journal.record('committed', { host: target.host.name });
      },
    },
    {
      name: 'finish',
      run: async () => {
        await steps.undefineSource();
        if (settings.keepSourceDefinition) log(`kept defined, shut off, on ${source.host.name}`);
        // Started is not running: a guest that crashed at once, or a QEMU that ended, is the user's to know of.
        const state = settings.noStart ? undefined : await steps.targetState?.().catch(() => undefined);
        if (state && state !== 'running') outcome.targetNotRunning = state;
        // The steps may have connected a new agent in place of a lost one.
        await keepOrDeleteSourceDisks(context.source, plans, settings, log, journal, steps);
        await keepOrDeleteSourceVmFiles(context.source, outcome.files ?? [], settings, log, journal);
      },
    },
  ];
}

/** Every disk not already on the target (shared, or a read-only image there already), one after the other, through the sync engine. */
async function copyDisks(plans: readonly DiskPlan[], context: StepContext, outcome: ColdOutcome): Promise<void> {
  const { target, journal, listener } = context;
  const progress = new Map<string, DiskProgress>(plans.filter(crossesToTarget).map((p) => [p.disk.device, { device: p.disk.device, done: 0, total: p.disk.virtualSize, ready: false }]));
  const emit = (): void => listener({ type: 'progress', progress: { phase: 'copy', disks: [...progress.values()] } });
  for (const p of plans) {
    if (!crossesToTarget(p)) continue;
    if (p.create) {
      journal.record('created', createdEntry(p, target.host.name));
      await createTargetImage(p, target);
    } else if (p.targetLv) {
      // Made by an interrupted run: active still, unless the host restarted since.
      await target.call('volume.activateLv', { vg: p.targetLv.vg, lv: p.targetLv.lv });
    }
    const summary = await copyDiskToTarget(p, context, (d) => {
      progress.set(p.disk.device, d);
      emit();
    });
    outcome.diskBytes += summary.bytes_sent;
  }
}
