/**
 * `ferry demo`: the lab, a test guest writing records on lab-a, a live
 * migration to lab-b and back with the live view, then the figures and the
 * check of every record the guest wrote.
 */
import type { Command } from 'commander';
import { AgentClient } from '../../hosts/agent-client.js';
import { findHost, loadInventory } from '../../hosts/inventory.js';
import { labUp } from '../../lab/lab.js';
import { labDiskPath, labVmPaths, readSerial, startLabVm, waitForGuestReady } from '../../lab/vm.js';
import { lastCounter } from '../../lab/records.js';
import { migrateLive, type MigrationReport } from '../../migrate/live.js';
import { sleep } from '../../util/abort.js';
import { FerryError } from '../../util/errors.js';
import { formatMiB } from '../../util/units.js';
import { action } from '../context.js';
import { createMigrationView } from '../migration-view.js';
import { printReport } from './migrate.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('lab up, boot a test guest on lab-a, migrate it to lab-b and back, check its records')
    .option('--name <vm>', 'VM name', 'demo')
    .action(
      action(async (opts: { name: string }) => {
        const say = (s: string): void => void process.stdout.write(`\n== ${s}\n`);
        say('lab up: lab-a (127.0.0.2, local) and lab-b (127.0.0.3, through sshd)');
        await labUp();
        const inventory = loadInventory();
        const labA = await AgentClient.connect(findHost(inventory, 'lab-a'));
        const labB = await AgentClient.connect(findHost(inventory, 'lab-b'));
        const name = opts.name;
        try {
          for (const agent of [labA, labB]) {
            for (const p of await agent.call('qemu.list', undefined)) if (p.name === name) await agent.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
            for (const f of [labDiskPath(name), labVmPaths(name).serialLog]) await agent.call('file.remove', { path: f });
          }
          say(`boot the test guest "${name}" on lab-a (it writes numbered, checksummed records to its disk without pause)`);
          const t0 = Date.now();
          await startLabVm(labA, { name, disks: ['64M'] });
          await waitForGuestReady(labA, name);
          await sleep(1500);
          process.stdout.write(`guest up in ${((Date.now() - t0) / 1000).toFixed(1)} s; records so far: ${lastCounter(await readSerial(labA, name))}\n`);
          const reports: MigrationReport[] = [];
          for (const [from, to] of [
            ['lab-a', 'lab-b'],
            ['lab-b', 'lab-a'],
          ] as const) {
            say(`ferry migrate ${name} --from ${from} --to ${to}`);
            const view = createMigrationView();
            // The way out removes the source copy, so the way back finds a free path (ferry never overwrites one).
            const deleteSource = from === 'lab-a';
            process.stdout.write(deleteSource ? '(with --delete-source)\n' : '');
            const before = lastCounter(await readSerial(from === 'lab-a' ? labA : labB, name));
            const report = await migrateLive({ vm: name, from, to, inventory, diskMap: new Map(), deleteSource, signal: new AbortController().signal, listener: (e) => view.onEvent(e) });
            view.stop();
            printReport(report);
            if (report.status !== 'completed') throw new FerryError('MIGRATION_FAILED', `The demo migration ${from} -> ${to} ${report.status}`, { hint: report.error?.hint });
            reports.push(report);
            const onTarget = to === 'lab-a' ? labA : labB;
            let now = 0;
            for (let i = 0; i < 60 && now <= before; i++) {
              await sleep(250);
              now = lastCounter(await readSerial(onTarget, name));
            }
            process.stdout.write(`the guest goes on counting on ${to}: record ${now} (it had reported ${before} on ${from} when the migration began)\n`);
          }
          say('stop the guest and check every record on its disk');
          for (const p of await labA.call('qemu.list', undefined)) if (p.name === name) await labA.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
          const check = await labA.call('lab.checkRecords', { disks: [labDiskPath(name)], serialLogs: [labVmPaths(name).serialLog] });
          say('result');
          for (const report of reports)
            process.stdout.write(
              `${report.from} -> ${report.to}: downtime ${report.downtime_ms} ms (QEMU ${report.qemu_downtime_ms} ms), total ${(report.total_ms / 1000).toFixed(2)} s, moved RAM ${formatMiB(report.ram_bytes)} MiB + disk ${formatMiB(report.disk_bytes)} MiB\n`,
            );
          process.stdout.write(
            `records: ${check.ok ? 'OK' : 'FAILED'}: ${check.intact} intact, the guest reported ${check.lastReportedSeq}, ${check.missingCount} missing, ${check.corrupt.length} corrupt\n`,
          );
          if (!check.ok) process.exitCode = 1;
          process.stdout.write('\nThe lab stays up: try "ferry vm list lab-a", "ferry history"; "ferry lab down" removes it.\n');
        } finally {
          labA.close();
          labB.close();
        }
      }),
    );
}
