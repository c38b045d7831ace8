/** `ferry migrate VM --from A --to B`: live migration with local disks. */
import type { Command } from 'commander';
import { migrateLive, parseDiskMap, type MigrationReport } from '../../migrate/live.js';
import { FerryError } from '../../util/errors.js';
import { formatMiB, MiB } from '../../util/units.js';
import { action, collect, inventoryFor } from '../context.js';
import { createMigrationView } from '../migration-view.js';

interface MigrateOptions {
  from: string;
  to: string;
  diskMap: string[];
  createLv?: string;
  bandwidth?: string;
  maxDowntime?: string;
  autoConverge?: boolean;
  mirrorMode: string;
  force?: boolean;
  deleteSource?: boolean;
  keepSourceDefinition?: boolean;
  copySecrets?: boolean;
  driver?: string;
  offline?: boolean;
  mode?: string;
  shutdown?: boolean;
  shutdownTimeout?: string;
  forceOff?: boolean;
  start: boolean;
  precopyOnly?: boolean;
  cutover?: boolean;
  reboot?: boolean;
  fixGuest?: boolean;
  json?: boolean;
  quiet?: boolean;
}

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new FerryError('USAGE', `Invalid ${name} "${v}"`, { hint: `${name} takes a positive number` });
  return n;
}

export function register(program: Command): void {
  program
    .command('migrate')
    .argument('<vm>', 'name of the running VM or libvirt domain')
    .requiredOption('--from <host>', 'host the VM runs on')
    .requiredOption('--to <host>', 'host to move it to')
    .option('--disk-map <src=dst>', 'put source disk SRC at DST on the target (repeatable)', collect, [])
    .option('--create-lv <vg>', 'a source disk that is an LVM logical volume gets a new LV of its size in this volume group on the target (default: a VG of the same name, if the target has one)')
    .option('--bandwidth <MiB/s>', 'cap disk and RAM transfer rate')
    .option('--max-downtime <ms>', 'longest pause QEMU may plan for the switch-over (default 50)')
    .option('--auto-converge', 'let QEMU slow the guest down if it dirties RAM faster than the link')
    .option(
      '--mirror-mode <mode>',
      'write-blocking: guest writes reach both hosts before they complete (shorter pause, always converges); background: they do not wait for the network',
      'write-blocking',
    )
    .option('--force', "overwrite existing target images, accept cache=unsafe, and a running VM's shared disk through the host's page cache")
    .option('--delete-source', 'remove the source disk images after a successful migration')
    .option('--copy-secrets', "libvirt: define on the target each secret the domain's network disks log in with (Ceph, iSCSI CHAP) that it lacks, value included; removed again if the move fails")
    .option('--keep-source-definition', 'libvirt: leave the domain defined (shut off) on the source; by default it is undefined there and its XML kept in the journal')
    .option(
      '--mode <mode>',
      'live (default for a running VM): moves while it runs; warm: disks pre-copied while it runs (resumable), then a short cut-over; cold (default for a shut-off one): powered off, disks copied, started on the target',
    )
    .option('--precopy-only', 'warm: copy the disks and keep the target in step, then stop; the VM keeps running on the source (run again to refresh)')
    .option('--cutover', 'warm: finish a move whose pre-copy --precopy-only made (refused if there is none)')
    .option('--fix-guest', "warm --reboot: run ferry's guest fixes (ferry guest fix) on the target's copy before it boots there")
    .option('--reboot', 'warm: at the cut-over the guest powers off (--shutdown-timeout, --force-off) and boots afresh on the target, instead of moving its running state')
    .option('--shutdown', 'cold: power a running VM off first (ACPI) and wait for it')
    .option('--shutdown-timeout <seconds>', 'cold: how long the guest gets to power off (default 120)')
    .option('--force-off', 'cold: cut the power of a guest that did not power off in time (its disks are closed cleanly)')
    .option('--no-start', 'cold: make the VM on the target but do not start it')
    .option('--offline', "libvirt's name for --mode cold --shutdown")
    .option('--driver <name>', 'qemu or libvirt (default: whichever has the VM on the source)')
    .option('--json', 'print one final JSON object')
    .option('-q, --quiet', 'no live view')
    .description('live-migrate a running VM (libvirt domain or QEMU process) and its local disks to another host')
    .action(
      action(async (vm: string, opts: MigrateOptions, cmd: Command) => {
        const diskMap = parseDiskMap(opts.diskMap);
        if (opts.mode !== undefined && !['live', 'cold', 'warm'].includes(opts.mode)) throw new FerryError('USAGE', `Invalid --mode "${opts.mode}"`, { hint: 'use live, cold or warm' });
        if ((opts.precopyOnly || opts.cutover || opts.reboot) && opts.mode !== undefined && opts.mode !== 'warm') {
          throw new FerryError('USAGE', `${opts.precopyOnly ? '--precopy-only' : opts.cutover ? '--cutover' : '--reboot'} belongs to warm moves, not --mode ${opts.mode}`, {
            hint: 'drop --mode, or use --mode warm',
          });
        }
        if (opts.precopyOnly && opts.cutover)
          throw new FerryError('USAGE', '--precopy-only and --cutover exclude each other', { hint: 'pre-copy first with --precopy-only, then finish with --cutover' });
        const mode = (opts.precopyOnly || opts.cutover || opts.reboot ? 'warm' : opts.mode) as 'live' | 'cold' | 'warm' | undefined;
        const shutdownTimeout = positive('--shutdown-timeout', opts.shutdownTimeout);
        const bandwidthMiB = positive('--bandwidth', opts.bandwidth);
        const maxDowntimeMs = positive('--max-downtime', opts.maxDowntime);
        if (opts.mirrorMode !== 'write-blocking' && opts.mirrorMode !== 'background') {
          throw new FerryError('USAGE', `Invalid --mirror-mode "${opts.mirrorMode}"`, { hint: 'use write-blocking or background' });
        }
        const inventory = inventoryFor(cmd);
        const view = createMigrationView({ quiet: opts.quiet || (opts.json && !process.stderr.isTTY), title: `${vm} ${opts.from} -> ${opts.to}`, bandwidthBytes: bandwidthMiB && bandwidthMiB * MiB });
        const controller = new AbortController();
        let interrupts = 0;
        const onSigint = (): void => {
          interrupts++;
          view.onEvent({ type: 'log', message: interrupts === 1 ? 'interrupted: rolling back, the VM stays on the source' : 'still rolling back; please wait' });
          controller.abort();
        };
        process.on('SIGINT', onSigint);
        process.on('SIGTERM', onSigint);
        let report: MigrationReport;
        try {
          report = await migrateLive({
            vm,
            from: opts.from,
            to: opts.to,
            inventory,
            diskMap,
            createLv: opts.createLv,
            bandwidthMiB,
            maxDowntimeMs,
            autoConverge: opts.autoConverge,
            mirrorMode: opts.mirrorMode,
            force: opts.force,
            deleteSource: opts.deleteSource,
            keepSourceDefinition: opts.keepSourceDefinition,
            copySecrets: opts.copySecrets,
            driver: opts.driver,
            offline: opts.offline,
            mode,
            shutdown: opts.shutdown,
            shutdownTimeoutMs: shutdownTimeout === undefined ? undefined : shutdownTimeout * 1000,
            forceOff: opts.forceOff,
            noStart: !opts.start,
            precopyOnly: opts.precopyOnly,
            cutover: opts.cutover,
            reboot: opts.reboot,
            fixGuest: opts.fixGuest,
            signal: controller.signal,
            listener: (e) => view.onEvent(e),
          });
        } finally {
          view.stop();
          process.off('SIGINT', onSigint);
          process.off('SIGTERM', onSigint);
        }
        if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else printReport(report);
        if (report.status !== 'completed' && report.status !== 'precopied') process.exitCode = report.error?.code === 'USAGE' ? 2 : 1;
      }),
    );
}

export function printReport(r: MigrationReport): void {
  if (r.status === 'precopied') {
    process.stdout.write(
      `Pre-copied ${r.vm} ${r.from} -> ${r.to}: ${r.passes?.length ?? 0} passes, ${formatMiB(r.disk_bytes)} MiB sent, total ${(r.total_ms / 1000).toFixed(2)} s; ${r.vm} runs on ${r.from}\n` +
        `  finish with: ferry migrate ${r.vm} --from ${r.from} --to ${r.to} --cutover (or refresh with --precopy-only)\n`,
    );
    return;
  }
  if (r.status === 'completed' && r.mode === 'cold') {
    process.stdout.write(`Moved ${r.vm} ${r.from} -> ${r.to} cold: total ${(r.total_ms / 1000).toFixed(2)} s, disks ${formatMiB(r.disk_bytes)} MiB sent\n`);
    for (const w of r.warnings ?? []) process.stderr.write(`ferry: warning: ${w}\n`);
    return;
  }
  if (r.status === 'completed') {
    if (r.mode === 'warm')
      process.stdout.write(`Pre-copied in ${r.passes?.filter((p) => p.stage !== 'final').length ?? 0} passes; the last one, at the pause, carried ${formatMiB(r.final_pass_bytes ?? 0)} MiB\n`);
    process.stdout.write(
      `Migrated ${r.vm} ${r.from} -> ${r.to}${r.mode === 'warm' ? ' warm' : ''}: downtime ${r.downtime_ms ?? '?'} ms${r.qemu_downtime_ms !== undefined && r.qemu_downtime_ms !== r.downtime_ms ? ` (QEMU: ${r.qemu_downtime_ms} ms)` : ''}${r.driver === 'libvirt' ? ' (libvirt)' : ''}, total ${(r.total_ms / 1000).toFixed(2)} s, RAM ${formatMiB(r.ram_bytes)} MiB, disks ${formatMiB(r.disk_bytes)} MiB\n` +
        `  phases: ${Object.entries(r.phases)
          .map(([k, v]) => `${k} ${v} ms`)
          .join(', ')}\n`,
    );
    for (const w of r.warnings ?? []) process.stderr.write(`ferry: warning: ${w}\n`);
    return;
  }
  process.stderr.write(`ferry: migration of ${r.vm} ${r.status}${r.failed_phase ? ` in phase "${r.failed_phase}"` : ''}: ${r.error?.message}\n`);
  if (r.error?.hint) process.stderr.write(`  hint: ${r.error.hint}\n`);
  if (r.error?.code === 'VM_DIED') process.stderr.write(`  No copy of ${r.vm} runs now; disks are kept on both hosts.\n`);
  // A VM the source does not have: there is nothing of it to confirm.
  else if (r.source_running !== undefined && r.error?.code !== 'UNKNOWN_VM')
    process.stderr.write(
      r.source_running
        ? `  ${r.vm} is running on ${r.from}; its disks are untouched and the target was cleaned up.\n`
        : `  WARNING: could not confirm ${r.vm} runs on ${r.from}; check it with "ferry vm list ${r.from}".\n`,
    );
  process.stderr.write(`  journal: ${r.journal}\n`);
}
