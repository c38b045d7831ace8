/** `ferry lab ...`: simulated hosts on this machine, and test guests on them. */
import { spawnSync } from 'node:child_process';
import { Option, type Command } from 'commander';
import { LAB_SHARED_DIR, labDown, labExecArgv, labHostVolumeGroup, labIsUp, labState, labUp } from '../../lab/lab.js';
import { labDiskPath, labVmPaths, readSerial, startLabDomain, startLabVm, stopLabVm, waitForGuestReady } from '../../lab/vm.js';
import { lastCounter } from '../../lab/records.js';
import { FerryError } from '../../util/errors.js';
import { parseSize } from '../../util/units.js';
import { action, collect, connectHost } from '../context.js';

export function register(program: Command): void {
  const lab = program.command('lab').description('a lab of simulated hosts on this machine (lab-a, lab-b)');

  lab
    .command('up')
    .description('create the lab hosts lab-a (127.0.0.2, local) and lab-b (127.0.0.3, via sshd), each with its own libvirtd')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const { state, created } = await labUp();
        if (opts.json)
          process.stdout.write(
            JSON.stringify({
              created,
              shared: LAB_SHARED_DIR,
              hosts: state.hosts.map((h) => ({ name: h.name, address: h.address, transport: h.transport, libvirt: `qemu+tcp://${h.address}/system` })),
            }) + '\n',
          );
        else
          for (const h of state.hosts)
            process.stdout.write(`${created ? 'created' : 'up'}: ${h.name}  ${h.address}  ${h.transport === 'ssh' ? 'ssh (real sshd)' : 'local'}  libvirt qemu+tcp://${h.address}/system\n`);
      }),
    );

  lab
    .command('down')
    .description('stop every lab VM and host and remove the lab')
    .action(
      action(async () => {
        const { stopped } = await labDown();
        process.stdout.write(stopped.length ? `stopped ${stopped.join(', ')}; lab removed\n` : 'no lab was up\n');
      }),
    );

  lab
    .command('status')
    .description('show the lab hosts')
    .action(
      action(async () => {
        const state = await labState();
        if (!state || !(await labIsUp())) {
          process.stdout.write('The lab is down ("ferry lab up" creates it).\n');
          return;
        }
        for (const host of state.hosts) process.stdout.write(`${host.name}  ${host.address}  ${host.transport}  pid ${host.pid}  libvirtd pid ${host.libvirtdPid}\n`);
        process.stdout.write(`shared by all: ${LAB_SHARED_DIR}\n`);
      }),
    );

  lab
    .command('exec')
    .argument('<host>', 'lab host')
    .argument('<command...>', 'command and arguments (after --)')
    .description('run a command on a lab host: ferry lab exec lab-a -- ls /var/lib/ferry')
    .action(
      action(async (host: string, command: string[]) => {
        const argv = await labExecArgv(host, command);
        const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
        process.exitCode = r.status ?? 1;
      }),
    );

  lab
    .command('vg')
    .argument('<host>', 'lab host')
    .argument('<vg>', 'volume group name')
    .option('--size <MiB>', 'its size', '64')
    .option('--lv <name=size>', 'and an LV in it, active at /dev/VG/NAME, for a lab VM to run on (repeatable)', collect, [])
    .description("give a lab host an LVM volume group on a loop device, seen by that host's LVM only (ferry lab down removes it)")
    .action(
      action(async (host: string, vg: string, opts: { size: string; lv: string[] }, cmd: Command) => {
        const size = Number(opts.size);
        if (!Number.isInteger(size) || size < 8) throw new FerryError('USAGE', `Invalid --size "${opts.size}"`, { hint: 'give MiB, 8 or more' });
        const lvs = opts.lv.map((spec) => {
          const [name, bytes] = spec.split('=');
          if (!name || !bytes) throw new FerryError('USAGE', `Invalid --lv "${spec}"`, { hint: 'write --lv NAME=SIZE, e.g. --lv disk0=16M' });
          return { name, sizeBytes: parseSize(bytes) };
        });
        const { device } = await labHostVolumeGroup(host, vg, size);
        process.stdout.write(`${host}: volume group ${vg} on ${device} (${size} MiB)\n`);
        if (!lvs.length) return;
        const agent = await connectHost(cmd, host);
        try {
          for (const lv of lvs) process.stdout.write(`${host}: ${(await agent.call('volume.createLv', { vg, lv: lv.name, sizeBytes: lv.sizeBytes })).path}\n`);
        } finally {
          agent.close();
        }
      }),
    );

  const vm = lab.command('vm').description('test guests on lab hosts');
  vm.command('start')
    .argument('<name>', 'VM name')
    .requiredOption('--host <host>', 'lab host to start it on')
    .option('--kernel <path>', 'kernel to boot (default: the test guest)')
    .option('--initrd <path>', 'initramfs')
    .option('--append <cmdline>', 'kernel command line')
    .option(
      '--disk <path|size|volume:POOL/VOL|nbd://HOST:PORT/EXPORT|iscsi://[USER@]HOST:PORT/IQN/LUN>',
      'an existing image, a size such as 64M for a new qcow2, a volume of a libvirt storage pool, an NBD export, or an iSCSI LUN (with USER, CHAP through the libvirt secret whose usage is IQN; --libvirt only) (repeatable)',
      collect,
      [],
    )
    .option('--memory <MiB>', 'memory', '256')
    .addOption(new Option('--cache <mode>', "QEMU's cache mode for its disks").choices(['none', 'writeback', 'unsafe']).default('none'))
    .option('--dirty <MiB>', 'test guest: keep rewriting this much RAM')
    .option('--rate <records>', 'test guest: records written per second (default: as many as it can)')
    .option('--libvirt', "define and start it as a domain of the host's libvirtd instead")
    .option('--uefi', 'with --libvirt: boot through UEFI firmware (OVMF), with a variable store of its own')
    .option('--tpm', 'with --libvirt: an emulated TPM 2.0 (swtpm)')
    .option('--no-wait', 'do not wait for the test guest to report ready')
    .option('--json', 'print JSON')
    .description('boot a small Linux guest as a plain QEMU process with a QMP socket, or as a libvirt domain')
    .action(
      action(
        async (
          name: string,
          opts: {
            host: string;
            kernel?: string;
            initrd?: string;
            append?: string;
            disk: string[];
            memory: string;
            cache: 'none' | 'writeback' | 'unsafe';
            dirty?: string;
            rate?: string;
            libvirt?: boolean;
            uefi?: boolean;
            tpm?: boolean;
            wait: boolean;
            json?: boolean;
          },
        ) => {
          if (!(await labIsUp())) throw new FerryError('LAB', 'The lab is not up', { hint: 'run "ferry lab up" first' });
          const agent = await connectHost(vm, opts.host);
          try {
            const spec = {
              name,
              kernel: opts.kernel,
              initrd: opts.initrd,
              append: opts.append,
              disks: opts.disk,
              memoryMiB: Number(opts.memory),
              cache: opts.cache,
              extraAppend: [opts.dirty && `ferry.dirty=${opts.dirty}`, opts.rate && `ferry.rate=${opts.rate}`].filter(Boolean).join(' ') || undefined,
              uefi: opts.uefi,
              tpm: opts.tpm,
            };
            for (const [flag, on] of [
              ['--uefi', opts.uefi],
              ['--tpm', opts.tpm],
            ] as const)
              if (on && !opts.libvirt) throw new FerryError('USAGE', `${flag} needs --libvirt`, { hint: 'add --libvirt: a plain QEMU lab VM has neither firmware of its own nor a TPM' });
            // Below that, OVMF cannot load the test guest's kernel and initramfs, and the guest never reports ready.
            if (opts.uefi && spec.memoryMiB < 192) throw new FerryError('USAGE', `--uefi needs --memory 192 or more (not ${opts.memory})`, { hint: 'raise --memory' });
            if (opts.libvirt) {
              const started = await startLabDomain(agent, spec);
              if (opts.wait && !opts.kernel) await waitForGuestReady(agent, name);
              if (opts.json)
                process.stdout.write(JSON.stringify({ name, host: opts.host, libvirt: true, pid: started.pid, serial: started.serialLog, disks: started.disks, xml: started.xmlPath }) + '\n');
              else process.stdout.write(`started ${name} on ${opts.host} as a libvirt domain (pid ${started.pid}); console ${started.serialLog}\n`);
              return;
            }
            const started = await startLabVm(agent, spec);
            if (opts.wait && !opts.kernel) await waitForGuestReady(agent, name);
            if (opts.json) process.stdout.write(JSON.stringify({ name, host: opts.host, pid: started.pid, qmp: started.qmpSocket, serial: started.serialLog, disks: started.disks }) + '\n');
            else process.stdout.write(`started ${name} on ${opts.host} (pid ${started.pid}); QMP ${started.qmpSocket}, console ${started.serialLog}\n`);
          } finally {
            agent.close();
          }
        },
      ),
    );

  vm.command('stop')
    .argument('<name>', 'VM name')
    .requiredOption('--host <host>', 'lab host it runs on')
    .description('stop a lab VM (a libvirt domain is destroyed and undefined); its disks and console log are kept')
    .action(
      action(async (name: string, opts: { host: string }) => {
        const agent = await connectHost(vm, opts.host);
        try {
          const { kind } = await stopLabVm(agent, name);
          process.stdout.write(`stopped ${name} on ${opts.host}${kind === 'libvirt' ? ' (libvirt domain destroyed and undefined)' : ''}; disks kept\n`);
        } finally {
          agent.close();
        }
      }),
    );

  vm.command('counter')
    .argument('<name>', 'VM name')
    .requiredOption('--host <host>', 'lab host')
    .description("the test guest's last reported record number (from its serial console)")
    .action(
      action(async (name: string, opts: { host: string }) => {
        const agent = await connectHost(vm, opts.host);
        try {
          process.stdout.write(`${lastCounter(await readSerial(agent, name))}\n`);
        } finally {
          agent.close();
        }
      }),
    );

  vm.command('check')
    .argument('<name>', 'VM name')
    .requiredOption('--host <host>', 'lab host holding its disks (stop the VM first)')
    .option('--disk <path>', 'disk image in guest order (repeatable; default: the lab images of NAME)', collect, [])
    .option('--json', 'print JSON')
    .description('check every record the test guest wrote: intact, none it reported missing')
    .action(
      action(async (name: string, opts: { host: string; disk: string[]; json?: boolean }) => {
        const agent = await connectHost(vm, opts.host);
        try {
          const disks = opts.disk.length ? opts.disk : [labDiskPath(name)];
          const r = await agent.call('lab.checkRecords', { disks, serialLogs: [labVmPaths(name).serialLog] });
          if (opts.json) process.stdout.write(JSON.stringify(r) + '\n');
          else process.stdout.write(`${r.ok ? 'OK' : 'FAILED'}: ${r.intact} records intact, last reported ${r.lastReportedSeq}, ${r.missingCount} missing, ${r.corrupt.length} corrupt\n`);
          if (!r.ok) process.exitCode = 1;
        } finally {
          agent.close();
        }
      }),
    );
}
