/** `ferry vm list HOST`: the VMs on a host, like `virsh list`. */
import type { Command } from 'commander';
import { cacheModeOf } from '../../drivers/driver.js';
import { drivers } from '../../migrate/drivers.js';
import { formatMiB } from '../../util/units.js';
import { action, connectHost } from '../context.js';

export function register(program: Command): void {
  const vm = program.command('vm').description('virtual machines on a host');
  vm.command('list')
    .argument('<host>', 'host from the inventory')
    .option('--json', 'print JSON')
    .description('list the VMs on HOST (libvirt domains, running and shut off, and QEMU processes) with their state and disks')
    .action(
      action(async (host: string, opts: { json?: boolean }) => {
        const agent = await connectHost(vm, host);
        try {
          const vms = (await Promise.all(drivers.map((d) => d.listVms(agent)))).flat();
          if (opts.json) {
            process.stdout.write(
              JSON.stringify(
                vms.map((v) => ({
                  name: v.name,
                  driver: v.driver,
                  cpu: v.cpuModel,
                  networks: v.attachments ?? [],
                  pid: v.pid,
                  state: v.state,
                  memory_bytes: v.memoryBytes,
                  qemu: v.hypervisorVersion,
                  disks: v.disks.map((d) => ({
                    device: d.device,
                    path: d.path,
                    format: d.format,
                    kind: d.kind,
                    virtual_size: d.virtualSize,
                    cache: cacheModeOf(d),
                    backing_chain: d.backingChain.map((b) => ({ path: b.filename, format: b.format })),
                  })),
                  files: (v.ownFiles ?? []).map((f) => ({ what: f.what, path: f.path })),
                })),
                null,
                2,
              ) + '\n',
            );
            return;
          }
          if (!vms.length) {
            process.stdout.write(`No VMs on ${host}.\n`);
            return;
          }
          const rows = [[' Name', 'Driver', 'PID', 'State', 'Memory', 'CPU', 'Networks', 'Disks']];
          for (const v of vms) {
            const disks = [
              ...v.disks.map(
                (d) =>
                  `${d.path} (${d.kind ? `${d.kind}, ` : ''}${d.format}, ${d.kind === 'network' ? 'size on its server' : `${formatMiB(d.virtualSize)} MiB`}, cache ${cacheModeOf(d)}${d.backingChain.length ? `, backing ${d.backingChain.map((b) => b.filename).join(' <- ')}` : ''})`,
              ),
              ...(v.ownFiles ?? []).map((f) => `${f.path} (${f.what})`),
            ];
            rows.push([` ${v.name}`, v.driver, v.pid ? String(v.pid) : '-', v.state, `${formatMiB(v.memoryBytes)} MiB`, v.cpuModel ?? '-', v.attachments?.join(',') || '-', disks[0] ?? '-']);
            for (const extra of disks.slice(1)) rows.push(['', '', '', '', '', '', '', extra]);
          }
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          const line = (r: string[]): string =>
            r
              .map((c, i) => c.padEnd(widths[i]!))
              .join('   ')
              .trimEnd();
          process.stdout.write([line(rows[0]!), '-'.repeat(line(rows[0]!).length + 10), ...rows.slice(1).map(line)].join('\n') + '\n');
        } finally {
          agent.close();
        }
      }),
    );
}
