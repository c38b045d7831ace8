/**
 * The phases of an offline move: the VM does not run while its disks are
 * copied with the sync engine (verified, and resumable: the images an
 * interrupted move made on the target are kept, and the same command
 * continues into them from their checkpoints), then it is defined on the
 * target and its source definition removed. A VM that was running (moved
 * with --offline) is shut down first and started on the target at the end.
 */
import type { DiskPlan, OfflineSteps, StepContext } from '../drivers/driver.js';
import type { DiskProgress } from '../drivers/progress.js';
import { syncDisks } from '../transfer/sync-controller.js';
import { verifyError } from '../transfer/sync-summary.js';
import { checkAuxFiles, checkDistinctHosts, checkMemory } from './checks.js';
import { journalEntries, readHistory } from './journal.js';
import type { Phase } from './phases.js';
import { planDisks } from './plan.js';
import type { MigrationSettings } from './settings.js';

export interface OfflineOutcome {
  described?: boolean;
  /** The VM ran before the move (it was shut down for it). */
  wasRunning?: boolean;
  /** The target has the VM's definition and the source no longer runs it: from here the target owns it. */
  committed?: boolean;
  diskBytes: number;
}

/** Target images an earlier, unfinished offline move of the same VM between the same hosts made: a new run continues into them. */
export function imagesToResume(vm: string, from: string, to: string): Set<string> {
  const paths = new Set<string>();
  for (const item of readHistory()) {
    if (item.vm !== vm || item.from !== from || item.to !== to || item.status === 'completed') continue;
    const entries = journalEntries(item.id);
    if (!entries.some((e) => e.step === 'mode' && e.mode === 'offline')) continue;
    for (const e of entries) if (e.step === 'created' && typeof e.path === 'string') paths.add(e.path);
  }
  return paths;
}

export function offlinePhases(steps: OfflineSteps, context: StepContext, settings: MigrationSettings, outcome: OfflineOutcome, resumable: ReadonlySet<string>): Phase[] {
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
        await checkAuxFiles(vm, target);
        [plans] = await Promise.all([planDisks(vm, source, target, { diskMap: settings.diskMap, force: settings.force, log, resumable }), steps.checkTarget(vm)]);
        log(`checked: ${vm.name} (${vm.state}, ${vm.disks.length} disk${vm.disks.length === 1 ? '' : 's'}) ${source.host.name} -> ${target.host.name}, offline`);
      },
    },
    {
      name: 'stop',
      run: async () => {
        if (!outcome.wasRunning) return;
        log(`shutting ${context.vmName} down on ${source.host.name}`);
        await steps.stopSource();
      },
      rollback: async () => {
        if (outcome.wasRunning) await steps.startSource();
      },
    },
    {
      // No rollback: what was copied stays for the next run to continue from.
      name: 'copy',
      run: () => copyDisks(plans, context, outcome),
    },
    { name: 'define', run: () => steps.defineTarget(plans), rollback: () => steps.undefineTarget() },
    {
      name: 'finish',
      run: async () => {
        await steps.undefineSource();
        outcome.committed = true;
        journal.record('committed', { host: target.host.name });
        log(
          settings.keepSourceDefinition
            ? `defined on ${target.host.name}; kept defined, shut off, on ${source.host.name}`
            : `defined on ${target.host.name}; undefined on ${source.host.name} (its XML is in the journal)`,
        );
        if (outcome.wasRunning) {
          await steps.startTarget();
          log(`started on ${target.host.name}`);
        }
      },
    },
  ];
}

/** Every disk not already on the target, one after the other, through the sync engine. */
async function copyDisks(plans: readonly DiskPlan[], context: StepContext, outcome: OfflineOutcome): Promise<void> {
  const { source, target, journal, listener } = context;
  const progress = new Map<string, DiskProgress>(plans.filter((p) => !p.shared).map((p) => [p.disk.device, { device: p.disk.device, done: 0, total: p.disk.virtualSize, ready: false }]));
  const emit = (): void => listener({ type: 'progress', progress: { phase: 'copy', disks: [...progress.values()] } });
  for (const p of plans) {
    if (p.shared) continue;
    if (p.create) {
      journal.record('created', { host: target.host.name, path: p.targetPath, format: p.targetFormat, backing: p.base?.filename });
      await target.call('image.create', { path: p.targetPath, format: p.targetFormat, sizeBytes: p.disk.virtualSize, backingFile: p.base?.filename, backingFormat: p.base?.format });
    }
    const summary = await syncDisks(
      { client: source, path: p.disk.path, label: `${source.host.name}:${p.disk.path}` },
      { client: target, path: p.targetPath, label: `${target.host.name}:${p.targetPath}` },
      {
        resume: p.resume,
        verify: true,
        onProgress: (s) => {
          progress.set(p.disk.device, { device: p.disk.device, done: s.bytesCompared, total: s.bytesTotal, ready: s.phase === 'done' });
          emit();
        },
      },
    );
    if (summary.status === 'verify-failed') throw verifyError(summary);
    outcome.diskBytes += summary.bytes_sent;
    progress.set(p.disk.device, { device: p.disk.device, done: summary.bytes_total, total: summary.bytes_total, ready: true });
    emit();
    journal.record('copied', { path: p.targetPath, bytes_sent: summary.bytes_sent, blocks_resumed: summary.blocks_resumed, seconds: summary.seconds });
  }
}
