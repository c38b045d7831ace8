/** `ferry recover [VM|ID]`: settle migrations that ended without an end record. */
import type { Command } from 'commander';
import { recoverMigration, unfinishedMigrations, type RecoveryReport } from '../../migrate/recover.js';
import { action, inventoryFor } from '../context.js';

export function register(program: Command): void {
  program
    .command('recover')
    .argument('[target]', 'a migration id or a VM name (default: every unfinished migration)')
    .option('--json', 'print one JSON array of what was done')
    .description('bring interrupted migrations to one running copy and remove their leftovers')
    .action(
      action(async (selector: string | undefined, opts: { json?: boolean }, cmd: Command) => {
        const inventory = inventoryFor(cmd);
        const reports: RecoveryReport[] = [];
        for (const item of unfinishedMigrations(selector)) reports.push(await recoverMigration(item, inventory));
        if (opts.json) process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
        else if (!reports.length) process.stdout.write('No unfinished migrations.\n');
        else for (const r of reports) process.stdout.write(describe(r) + '\n');
        if (reports.some((r) => r.status === 'failed')) process.exitCode = 1;
      }),
    );
}

function describe(r: RecoveryReport): string {
  const where = r.runs_on.length ? `${r.vm} runs on ${r.runs_on.join(' and ')}` : `${r.vm} runs on neither host`;
  if (r.status === 'failed') return `${r.id}: could not recover: ${r.error?.message}${r.error?.hint ? `\n  hint: ${r.error.hint}` : ''}`;
  if (r.status === 'nothing-to-do') return `${r.id}: nothing left to do; ${where}`;
  const s = r.settlement!;
  const outcomes: Record<string, string> = {
    committed: `the VM had moved to ${r.to}; the source copy was stopped (its disks kept)`,
    aborted: `the VM stays on ${r.from}; what was made on ${r.to} was removed`,
    died: `the VM died on ${r.to} after taking over; the older copy on ${r.from} was stopped, disks kept on both`,
    incoming: 'the target is still receiving',
    none: `nothing had been made on ${r.to}; the source was cleaned`,
  };
  const what = outcomes[s.outcome] ?? s.outcome;
  return `${r.id}: settled: ${what}; ${where}`;
}
