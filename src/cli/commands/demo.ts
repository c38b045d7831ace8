/**
 * `ferry demo`: the lab, a test guest writing records on lab-a, a live
 * migration to lab-b and back with the live view, then the figures and the
 * check of every record the guest wrote.
 */
import type { Command } from 'commander';
import { AgentClient } from '../../hosts/agent-client.js';
import { findHost, loadInventory } from '../../hosts/inventory.js';
import { labUp } from '../../lab/lab.js';
import { labVmPaths, readSerial, startLabVm, waitForGuestReady } from '../../lab/vm.js';
import { lastCounter } from '../../lab/records.js';
import { migrateLive, type MigrationReport } from '../../migrate/live.js';
import { sleep } from '../../util/abort.js';
import { FerryError } from '../../util/errors.js';
import { action, mib } from '../context.js';
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
        const a = await AgentClient.connect(findHost(inventory, 'lab-a'));
        const b = await AgentClient.connect(findHost(inventory, 'lab-b'));
        const name = opts.name;
        try {
          for (const agent of [a, b]) {
            for (const p of await agent.call('qemu.list', undefined)) if (p.name === name) await agent.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
            for (const f of [`/var/lib/ferry/images/${name}-disk0.qcow2`, labVmPaths(name).serialLog]) await agent.call('file.remove', { path: f });
          }
          say(`boot the test guest "${name}" on lab-a (it writes numbered, checksummed records to its disk without pause)`);
          const t0 = Date.now();
          await startLabVm(a, { name, disks: ['64M'] });
          await waitForGuestReady(a, name);
          await sleep(1500);
          process.stdout.write(`guest up in ${((Date.now() - t0) / 1000).toFixed(1)} s; records so far: ${lastCounter(await readSerial(a, name))}\n`);
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
            const before = lastCounter(await readSerial(from === 'lab-a' ? a : b, name));
            const r = await migrateLive({ vm: name, from, to, inventory, diskMap: new Map(), deleteSource, signal: new AbortController().signal, listener: (e) => view.onEvent(e) });
            view.stop();
            printReport(r);
            if (r.status !== 'completed') throw new FerryError('MIGRATION_FAILED', `The demo migration ${from} -> ${to} ${r.status}`, { hint: r.error?.hint });
            reports.push(r);
            const onTarget = to === 'lab-a' ? a : b;
            let now = 0;
            for (let i = 0; i < 60 && now <= before; i++) {
              await sleep(250);
              now = lastCounter(await readSerial(onTarget, name));
            }
            process.stdout.write(`the guest goes on counting on ${to}: record ${now} (it had reported ${before} on ${from} when the migration began)\n`);
          }
          say('stop the guest and check every record on its disk');
          for (const p of await a.call('qemu.list', undefined)) if (p.name === name) await a.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
          const check = await a.call('lab.checkRecords', { disks: [`/var/lib/ferry/images/${name}-disk0.qcow2`], serialLogs: [labVmPaths(name).serialLog] });
          say('result');
          for (const r of reports)
            process.stdout.write(
              `${r.from} -> ${r.to}: downtime ${r.downtime_ms} ms (QEMU ${r.qemu_downtime_ms} ms), total ${(r.total_ms / 1000).toFixed(2)} s, moved RAM ${mib(r.ram_bytes)} + disk ${mib(r.disk_bytes)}\n`,
            );
          process.stdout.write(
            `records: ${check.ok ? 'OK' : 'FAILED'}: ${check.intact} intact, the guest reported ${check.lastReportedSeq}, ${check.missingCount} missing, ${check.corrupt.length} corrupt\n`,
          );
          if (!check.ok) process.exitCode = 1;
          process.stdout.write('\nThe lab stays up: try "ferry vm list lab-a", "ferry history"; "ferry lab down" removes it.\n');
        } finally {
          a.close();
          b.close();
        }
      }),
    );
}
