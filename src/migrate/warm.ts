/**
 * The phases of a warm move (seed 001's blocksync, `xm save`, blocksync
 * again, `xm restore`, with no pass reading the whole disk again): while
 * the VM runs, its disks are copied to images the target serves over NBD,
 * then only what the guest wrote meanwhile, pass after pass, until a pass
 * is small enough for the pause asked for. The cut-over is a live move's
 * whose disks are already there: the target QEMU starts on the pre-copied
 * images, one more pass catches up with the guest, the RAM moves, and the
 * last pass runs while the guest is paused at the switch-over.
 *
 * The pre-copy is resumable: the source's dirty bitmap keeps what no pass
 * has copied yet whatever stopped a pass (a broken link, ferry or an agent
 * killed, the target rebooted), and the target keeps its images, so the
 * same command continues with the changes only. `--precopy-only` stops
 * after the pre-copy (a refresh can run every night); `--cutover` finishes
 * a move whose pre-copy was made so.
 */
import { attachTarget, clearLeftovers, openReceiver, detachTarget, passDisks, pendingBytes, runPass, tracking, type PassDisk, type PassKind, type PassProgress } from '../drivers/block-passes.js';
import { crossesToTarget, type BlockMonitor, type ColdSteps, type DiskPlan, type StepContext, type WarmSteps } from '../drivers/driver.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS } from './cold.js';
import { keepOrDeleteSourceDisks } from './source-disks.js';
import { carryVmFiles, keepOrDeleteSourceVmFiles, keptForRerun } from './vm-files.js';
import { FerryError } from '../util/errors.js';
import { formatMiB } from '../util/units.js';
import { livePhases, type LiveOutcome } from './live-phases.js';
import { createdEntry, createTargetImage } from './plan.js';
import type { Phase } from './phases.js';
import type { MigrationSettings } from './settings.js';

/** Passes per stage before ferry stops waiting for the guest's writes to shrink. */
const MAX_PASSES = 8;
/** The pause a warm cut-over aims at when --max-downtime does not say. */
export const DEFAULT_WARM_DOWNTIME_MS = 200;

export interface WarmPass {
  pass: number;
  /** first: the whole disk (what it holds); changes: what the guest wrote since the previous pass began. */
  kind: 'first' | 'changes' | 'mixed';
  /** precopy: into the target's images; catch-up: into the target QEMU, before the RAM; final: at the pause. */
  stage: 'precopy' | 'catch-up' | 'final';
  bytes: number;
  ms: number;
  /** What the guest wrote during the pass, left for the next one. */
  pending_bytes?: number;
}

export interface WarmOutcome extends LiveOutcome {
  passes: WarmPass[];
  /** --reboot: the last pass's bytes, and whether the VM was started (or made, with --no-start) on the target. */
  lastPassBytes?: number;
  committed?: boolean;
  /** --fix-guest: what the fixes changed on the target's copy. */
  guestFixes?: string[];
  /** The pre-copy is done and the target in step (for --precopy-only). */
  precopied?: boolean;
}

/** `cold`: the driver's cold steps, with which --reboot makes and starts the VM on the target. */
export function warmPhases(steps: WarmSteps, context: StepContext, settings: MigrationSettings, outcome: WarmOutcome, resumable: ReadonlySet<string>, cold?: ColdSteps): Phase[] {
  const [check, prepare, mirror, ...rest] = livePhases(steps, context, settings, outcome, { resumable });
  const { target, journal } = context;
  let disks: PassDisk[] = [];
  let receiver: { id: string; port: number } | undefined;
  const precopy: Phase = {
    name: 'precopy',
    run: async () => {
      const plans = outcome.plans!;
      const monitor = steps.monitor();
      disks = passDisks(plans, steps.diskNodes());
      await clearLeftovers(monitor, disks);
      const kinds = await passKinds(monitor, disks, plans, settings, (m) => log(context, m));
      for (const p of plans) {
        if (!crossesToTarget(p)) continue;
        if (p.create) {
          // Not claimed for removal: a failed move keeps what its pre-copy made, for the next run.
          journal.record('created', createdEntry(p, target.host.name));
          await createTargetImage(p, target);
          p.create = false;
        } else if (p.targetLv) {
          // Made by an interrupted run: active still, unless the host restarted since.
          await target.call('volume.activateLv', { vg: p.targetLv.vg, lv: p.targetLv.lv });
        }
        p.precopied = true;
      }
      await toReceiver(
        context,
        plans,
        monitor,
        disks,
        (r) => (receiver = r),
        () => converge(monitor, disks, kinds, 'precopy', context, settings, outcome),
      );
      outcome.precopied = true;
      journal.record('precopied', { host: target.host.name, passes: outcome.passes.length });
      const behind = outcome.passes.at(-1)?.pending_bytes ?? 0;
      log(
        context,
        `pre-copy done in ${outcome.passes.length} pass${outcome.passes.length === 1 ? '' : 'es'}: ${target.host.name} holds every disk but the guest's latest ${formatMiB(behind)} MiB of writes`,
      );
    },
    rollback: async () => {
      // What was copied stays on the target, and the bitmaps keep what was not.
      await clearLeftovers(steps.monitor(), disks).catch(() => undefined);
      if (receiver) await target.call('image.receiveEnd', { id: receiver.id }).catch(() => undefined);
    },
  };
  if (settings.precopyOnly) return [check!, precopy];
  if (settings.reboot) return [check!, precopy, ...rebootPhases(steps, cold, context, settings, outcome, () => disks)];
  const catchUp: Phase = {
    name: 'catch-up',
    run: async () => {
      await mirror!.run();
      const kinds = new Map(disks.map((d) => [d.device, 'changes' as const]));
      await converge(steps.monitor(), disks, kinds, 'catch-up', context, settings, outcome);
      log(context, `disks in step on ${target.host.name}; the last pass runs at the pause`);
    },
  };
  return [check!, precopy, prepare!, catchUp, ...rest];
}

/** Serves the target's images over NBD while `work` runs passes into them; `opened` learns the receiver, for a rollback to close. */
async function toReceiver(
  context: StepContext,
  plans: readonly DiskPlan[],
  monitor: BlockMonitor,
  disks: readonly PassDisk[],
  opened: (r: { id: string; port: number } | undefined) => void,
  work: () => Promise<void>,
): Promise<void> {
  const { target } = context;
  const receiver = await openReceiver(target, plans);
  opened(receiver);
  await attachTarget(monitor, disks, { host: target.host.address, port: receiver.port });
  await work();
  await detachTarget(monitor, disks);
  await target.call('image.receiveEnd', { id: receiver.id });
  opened(undefined);
}

/**
 * --reboot: no running state crosses. The guest powers off (or, with
 * --force-off, is stopped where it is), the last pass carries what it wrote
 * since the pre-copy, and the VM boots on the target from its own command
 * line or definition (cold moves' steps): the commit point is that start.
 * Until then a failure has the guest run on the source again.
 */
function rebootPhases(steps: WarmSteps, cold: ColdSteps | undefined, context: StepContext, settings: MigrationSettings, outcome: WarmOutcome, disks: () => PassDisk[]): Phase[] {
  if (!steps.powerOff || !steps.powerOn || !cold) throw new FerryError('USAGE', 'This driver cannot reboot a warm move yet', { hint: 'drop --reboot: the cut-over then moves the running guest' });
  let poweredOff = false;
  let committed = false;
  let receiver: { id: string; port: number } | undefined;
  const { journal, target, listener } = context;
  return [
    {
      name: 'shutdown',
      run: async () => {
        await cold.describe();
        log(context, `powering ${context.vmName} off on ${context.source.host.name}`);
        await steps.powerOff!({ timeoutMs: settings.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS, forceOff: !!settings.forceOff });
        poweredOff = true;
      },
      rollback: async () => {
        if (poweredOff && !committed) await steps.powerOn!();
      },
    },
    {
      name: 'final',
      run: async () => {
        const kinds = new Map(disks().map((d) => [d.device, 'changes' as const]));
        const t0 = performance.now();
        await toReceiver(
          context,
          outcome.plans!,
          steps.monitor(),
          disks(),
          (r) => (receiver = r),
          async () => {
            const result = await runPass(steps.monitor(), disks(), kinds, {
              signal: context.signal,
              onProgress: (p) => listener({ type: 'progress', progress: { phase: 'final', disks: p.map((d) => ({ ...d, ready: false })) } }),
            });
            const bytes = Object.values(result.bytes).reduce((a, b) => a + b, 0);
            const pass: WarmPass = { pass: outcome.passes.length + 1, kind: 'changes', stage: 'final', bytes, ms: result.ms };
            outcome.passes.push(pass);
            outcome.lastPassBytes = bytes;
            journal.record('pass', { ...pass });
          },
        );
        log(context, `last pass: ${formatMiB(outcome.lastPassBytes ?? 0)} MiB in ${Math.round(performance.now() - t0)} ms; ${target.host.name} holds the disks as the guest left them`);
        // Powered off, the VM's own files are final too; kept, as its images are, for a run that continues.
        await carryVmFiles(outcome.files ?? [], context, keptForRerun(context), (m) => log(context, m));
      },
      rollback: async () => {
        await clearLeftovers(steps.monitor(), disks()).catch(() => undefined);
        if (receiver) await target.call('image.receiveEnd', { id: receiver.id }).catch(() => undefined);
      },
    },
    ...(settings.fixGuest ? [fixPhase(context, outcome)] : []),
    {
      name: 'define',
      run: () => cold.defineTarget(outcome.plans!),
      rollback: async () => {
        if (!committed) await cold!.undefineTarget();
      },
    },
    {
      name: 'start',
      run: async () => {
        await steps.releaseSource?.();
        if (settings.noStart) log(context, `made on ${target.host.name}, not started (--no-start)`);
        else {
          await cold.startTarget();
          log(context, `booted on ${target.host.name}`);
        }
        committed = true;
        outcome.committed = true;
        journal.record('committed', { host: target.host.name });
      },
    },
    {
      name: 'finish',
      run: async () => {
        // The source's QEMU holds a powered-off or stopped guest: it goes; its disks stay.
        await cold.stopSource({ timeoutMs: 0, forceOff: true, final: true });
        await cold.undefineSource();
        log(context, `source on ${context.source.host.name} stopped`);
        await keepOrDeleteSourceDisks(context.source, outcome.plans!, settings, (m) => log(context, m), context.journal, cold);
        await keepOrDeleteSourceVmFiles(context.source, outcome.files ?? [], settings, (m) => log(context, m), context.journal);
      },
    },
  ];
}

/**
 * --fix-guest: ferry's guest fixes (device names, bootloader, network,
 * console, initramfs drivers) on the target's copy of the boot disk, before
 * its first boot there. The copy then differs from the source: the journal
 * says so, and a later run never continues a pre-copy into it.
 */
function fixPhase(context: StepContext, outcome: WarmOutcome): Phase {
  const { target, journal } = context;
  return {
    name: 'fix',
    run: async () => {
      const boot = outcome.plans!.find(crossesToTarget);
      if (!boot) throw new FerryError('USAGE', 'No disk of the VM is copied: --fix-guest has nothing to fix on the target', { hint: 'drop --fix-guest' });
      journal.record('guest-fixing', { host: target.host.name, path: boot.targetPath });
      const result = await target.call('guest.fix', { image: boot.targetPath });
      journal.record('guest-fixed', { host: target.host.name, path: boot.targetPath, changes: result.changes.length, remaining: result.remaining.length });
      outcome.guestFixes = result.changes.map((c) => `${c.operation}: ${c.file}`);
      log(
        context,
        `fixed the guest on ${target.host.name}:${boot.targetPath}: ${result.changes.length} change${result.changes.length === 1 ? '' : 's'} (${[...new Set(result.changes.map((c) => c.operation))].join(', ') || 'none needed'})`,
      );
      for (const p of result.remaining) context.listener({ type: 'warning', code: 'GUEST_PROBLEM', message: `left unfixed in the guest: ${JSON.stringify(p)}` });
    },
  };
}

/**
 * Per disk, a first pass or the changes since an earlier pre-copy: the
 * changes only when the target image is one an earlier warm move of this VM
 * made and the source's QEMU still records the writes since.
 */
async function passKinds(monitor: BlockMonitor, disks: readonly PassDisk[], plans: readonly DiskPlan[], settings: MigrationSettings, log: (m: string) => void): Promise<Map<string, PassKind>> {
  const state = await tracking(monitor, disks);
  const kinds = new Map<string, PassKind>();
  for (const d of disks) {
    const plan = plans.find((p) => p.disk.device === d.device)!;
    const tracked = state.get(d.device) === 'tracking';
    if (plan.resume && tracked) kinds.set(d.device, 'changes');
    else {
      if (settings.cutover) {
        throw new FerryError('NO_PRECOPY', `No pre-copy of disk ${plan.disk.path} to finish on the target`, {
          hint: plan.resume
            ? 'the source no longer records what the guest wrote since (its QEMU restarted, and the disk is not qcow2): run with --mode warm, which copies it again'
            : 'run "ferry migrate ... --mode warm --precopy-only" first, or --mode warm alone to pre-copy and cut over in one go',
        });
      }
      if (plan.resume) log(`${plan.disk.path}: the source no longer records the guest's writes since the earlier pre-copy; copying it whole again`);
      kinds.set(d.device, 'first');
    }
  }
  return kinds;
}

/**
 * Passes until what the guest wrote during the last one would cross within
 * the pause asked for (at the rate that pass achieved), or until passes stop
 * shrinking: the guest then writes about as fast as the link copies, and
 * the user is told what pause to expect.
 */
async function converge(
  monitor: BlockMonitor,
  disks: readonly PassDisk[],
  first: ReadonlyMap<string, PassKind>,
  stage: 'precopy' | 'catch-up',
  context: StepContext,
  settings: MigrationSettings,
  outcome: WarmOutcome,
): Promise<void> {
  const { listener, journal, signal } = context;
  const pauseMs = settings.maxDowntimeMs ?? DEFAULT_WARM_DOWNTIME_MS;
  let kinds = first;
  for (let n = 1; ; n++) {
    const t0 = performance.now();
    const result = await runPass(monitor, disks, kinds, {
      speed: context.settings.bandwidthBytes,
      signal,
      onProgress: (p: PassProgress[]) => listener({ type: 'progress', progress: { phase: stage, disks: p.map((d) => ({ ...d, ready: false })), etaSeconds: eta(p, t0) } }),
    });
    const bytes = Object.values(result.bytes).reduce((a, b) => a + b, 0);
    const pending = Object.values(await pendingBytes(monitor, disks)).reduce((a, b) => a + b, 0);
    const kindSet = new Set(kinds.values());
    const pass: WarmPass = { pass: outcome.passes.length + 1, kind: kindSet.size > 1 ? 'mixed' : [...kindSet][0]!, stage, bytes, ms: result.ms, pending_bytes: pending };
    outcome.passes.push(pass);
    journal.record('pass', { ...pass });
    const rate = (bytes * 1000) / Math.max(1, result.ms);
    const writeRate = (pending * 1000) / Math.max(1, result.ms);
    const expectMs = rate > 0 ? Math.round((pending * 1000) / rate) : 0;
    log(
      context,
      `pass ${pass.pass} (${stage}, ${pass.kind}): ${formatMiB(bytes)} MiB in ${(result.ms / 1000).toFixed(1)} s (${formatMiB(rate)} MiB/s); the guest wrote ${formatMiB(pending)} MiB meanwhile (${formatMiB(writeRate)} MiB/s), a pass of about ${expectMs} ms`,
    );
    listener({
      type: 'progress',
      progress: { phase: stage, disks: disks.map((d) => ({ device: d.device, done: result.bytes[d.device] ?? 0, total: result.bytes[d.device] ?? 0, ready: true, writeRate })) },
    });
    kinds = new Map(disks.map((d) => [d.device, 'changes' as const]));
    if (expectMs <= pauseMs) return;
    const previous = outcome.passes.filter((p) => p.stage === stage).at(-2);
    const shrinking = !previous || pending < (previous.pending_bytes ?? Infinity) * 0.9;
    if (n >= MAX_PASSES || (n >= 3 && !shrinking)) {
      const message = `The guest writes ${formatMiB(writeRate)} MiB/s to its disks and the link copies ${formatMiB(rate)} MiB/s: passes do not get shorter, so the last one will take about ${expectMs} ms of pause (asked: ${pauseMs} ms). Raise --bandwidth, or quiet the guest; Ctrl-C keeps it running on the source.`;
      listener({ type: 'warning', code: 'NOT_CONVERGING', message });
      journal.record('warning', { code: 'NOT_CONVERGING', write_rate: writeRate, rate, expect_ms: expectMs });
      return;
    }
  }
}

function eta(p: PassProgress[], t0: number): number | undefined {
  const done = p.reduce((s, d) => s + d.done, 0);
  const total = p.reduce((s, d) => s + d.total, 0);
  const seconds = (performance.now() - t0) / 1000;
  return done > 0 && seconds > 0.5 ? ((total - done) * seconds) / done : undefined;
}

function log(context: StepContext, message: string): void {
  context.listener({ type: 'log', message });
  context.journal.record('log', { message });
}
