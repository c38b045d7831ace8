/**
 * The phases of a live move. The flow is the same for every hypervisor:
 * the checks that hold for all, the plan and the target images, then the
 * driver's steps in order; every phase from prepare on has one rollback,
 * which has the driver settle the VM to the side that owns it at that
 * instant.
 */
import { crossesToTarget, type DiskPlan, type LiveSteps, type Settlement, type StepContext } from '../drivers/driver.js';
import { checkAuxFiles, checkDistinctHosts, checkMemory, checkMigrationAddress, checkRunning } from './checks.js';
import type { Phase } from './phases.js';
import { copyDiskToTarget } from './disk-copy.js';
import { createdEntry, createTargetImages, planDisks } from './plan.js';
import { stopIfAborted } from '../util/abort.js';
import { formatMiB } from '../util/units.js';
import { keepOrDeleteSourceDisks } from './source-disks.js';
import { carryVmFiles, keepOrDeleteSourceVmFiles, planVmFiles, type VmFilePlan } from './vm-files.js';
import type { MigrationSettings } from './settings.js';

/** What the phases leave for the report. */
export interface LiveOutcome {
  /** The VM was found on the source. */
  described?: boolean;
  /** Bytes ferry itself sent before the move: the read-only disks the hypervisor leaves. */
  copiedBytes?: number;
  /** How a failure was settled. */
  settlement?: Settlement;
  /** The plan the check made, for the phases that follow. */
  plans?: DiskPlan[];
  /** The VM's own files besides its disks (a UEFI variable store), as the check planned them. */
  files?: VmFilePlan[];
}

/**
 * The phases of a live move. Every phase from prepare on has one rollback:
 * settle the migration to whichever side owns the VM at that instant.
 */
export function livePhases(steps: LiveSteps, context: StepContext, settings: MigrationSettings, outcome: LiveOutcome, options: { resumable?: ReadonlySet<string> } = {}): Phase[] {
  const { source, target, journal } = context;
  const log = (message: string): void => {
    context.listener({ type: 'log', message });
    journal.record('log', { message });
  };
  let plans: Awaited<ReturnType<typeof planDisks>> = [];
  return [
    {
      name: 'check',
      run: async () => {
        checkDistinctHosts(source, target);
        await checkMigrationAddress(source, target);
        const vm = await steps.describe();
        outcome.described = true;
        checkRunning(vm, source);
        checkMemory(vm, target);
        // The plan asks the hosts' agents, the driver its hypervisor: all at once.
        [plans, outcome.files] = await Promise.all([
          planDisks(vm, source, target, {
            diskMap: settings.diskMap,
            force: settings.force,
            log,
            resumable: options.resumable,
            createLv: settings.createLv,
            running: true,
            reuseIdentical: steps.leavesReadOnlyDisks,
          }),
          // A warm move with --reboot boots the VM afresh on the target: what a live move's stream carries, ferry copies.
          planVmFiles(vm, source, target, { force: settings.force, resumable: options.resumable, log, live: !settings.reboot }),
          steps.checkTarget(vm),
          checkAuxFiles(vm, source, target),
        ]);
        await steps.checkPlans?.(plans);
        outcome.plans = plans;
        log(`checked: ${vm.name} (${Math.round(vm.memoryBytes / 2 ** 20)} MiB RAM, ${vm.disks.length} disk${vm.disks.length === 1 ? '' : 's'}) ${source.host.name} -> ${target.host.name}`);
        await stopIfAborted(context.signal);
      },
    },
    {
      name: 'prepare',
      run: async () => {
        await steps.beginTarget();
        await createTargetImages(
          plans,
          target,
          (c) => (c.lv ? steps.claimTargetFiles([], [c.lv]) : steps.claimTargetFiles([c.path])),
          (p) => journal.record('created', createdEntry(p, target.host.name)),
        );
        // The hypervisor opens it on the target as it starts the incoming VM, and writes the flash it receives back into it.
        outcome.copiedBytes = (outcome.copiedBytes ?? 0) + (await carryVmFiles(outcome.files ?? [], context, (path) => steps.claimTargetFiles([path]), log));
        if (steps.leavesReadOnlyDisks) {
          for (const p of plans.filter((p) => p.disk.readOnly && crossesToTarget(p) && !p.precopied)) {
            const { bytes_sent } = await copyDiskToTarget(p, context, () => undefined);
            outcome.copiedBytes = (outcome.copiedBytes ?? 0) + bytes_sent;
            log(`copied read-only disk ${p.disk.device} to ${target.host.name}:${p.targetPath} before the move (${formatMiB(bytes_sent)} MiB sent)`);
          }
        }
        await steps.prepareIncoming(plans);
        // A Ctrl-C during the check or the preparation is honoured here, before the copy begins: a driver
        // looks for it only while its copy runs, which for a small VM may be over at its first look.
        await stopIfAborted(context.signal);
      },
      rollback: async () => void (outcome.settlement = await steps.settle()),
    },
    { name: 'mirror', run: () => steps.copyDisks() },
    { name: 'memory', run: () => steps.copyMemory() },
    { name: 'switchover', run: () => steps.switchOver() },
    {
      name: 'finish',
      run: async () => {
        await steps.finish();
        await keepOrDeleteSourceDisks(steps.agents[0]!, plans, settings, log, journal, steps);
        await keepOrDeleteSourceVmFiles(steps.agents[0]!, outcome.files ?? [], settings, log, journal);
      },
    },
  ];
}
