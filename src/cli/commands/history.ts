/** `ferry history`: past migrations from the journal and how each ended. */
import type { Command } from 'commander';
import { readHistory } from '../../migrate/journal.js';
import { action } from '../context.js';

export function register(program: Command): void {
  program
    .command('history')
    .description('past migrations and how each ended')
    .option('--json', 'print JSON')
    .option('-n, --last <n>', 'only the last N', (v) => Number(v))
    .action(
      action(async (opts: { json?: boolean; last?: number }) => {
        let items = readHistory();
        if (opts.last) items = items.slice(-opts.last);
        if (opts.json) {
          process.stdout.write(JSON.stringify(items, null, 2) + '\n');
          return;
        }
        if (!items.length) {
          process.stdout.write('No migrations yet.\n');
          return;
        }
        for (const h of items) {
          const fig =
            h.status === 'completed'
              ? `downtime ${h.downtimeMs ?? '?'} ms, total ${((h.totalMs ?? 0) / 1000).toFixed(1)} s`
              : h.settleWith
                ? `no end record: settle it with "${h.settleWith}"`
                : h.status === 'recovered'
                  ? `settled by ferry recover${h.runsOn ? `; runs on ${h.runsOn}` : ''}`
                  : (h.error ?? '');
          process.stdout.write(`${h.started.replace('T', ' ').replace(/\..*/, '')}  ${h.vm.padEnd(12)} ${h.kind.padEnd(7)} ${(h.from ?? '') + ' -> ' + (h.to ?? '')}  ${h.status.padEnd(11)} ${fig}\n`);
        }
      }),
    );
}
