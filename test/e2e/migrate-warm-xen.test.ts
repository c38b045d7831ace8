/**
 * Seeds 000 and 003's move, end to end, for both drivers: a Debian guest set up as a Xen domU
 * (fstab and GRUB on /dev/xvda*, console on hvc0, eth0 bound to its Xen
 * MAC, an initramfs without virtio) runs as a QEMU VM on lab-a, where it
 * cannot come up. `ferry migrate --mode warm --reboot --fix-guest` copies
 * its disk while it runs, stops it, carries the last writes, fixes the
 * target's copy, and boots it on lab-b: it reaches its login prompt on
 * ttyS0 with every fstab mount and its static address.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { before, test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { detectAccel } from '../../src/drivers/qemu/accel.js';
import { RemoteQmp } from '../../src/drivers/qemu/remote-qmp.js';
import { ensureTestGuest } from '../../src/lab/guest-image.js';
import { labDomainXml } from '../../src/lab/domain-xml.js';
import { labVmArgv, labVmPaths, LAB_IMAGE_DIR } from '../../src/lab/vm.js';
import { cleanVm, ferry, readSerial, until, useLab } from './harness.js';
import { cleanDomain, domainState } from './libvirt-domains.js';
import { ensureDebianGuest, type DebianGuest } from './debian-guest.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

let guest: DebianGuest;

before(async () => {
  guest = await ensureDebianGuest();
});

/** The moved guest reaches its login prompt on lab-b, with / read-write, /srv mounted and its static address. */
async function assertBootsToLogin(vm: string): Promise<void> {
  const log = await until(
    `${vm} on lab-b to reach its login prompt`,
    async () => {
      const text = await readSerial(b, vm);
      return /FERRY-REPORT-END[\s\S]*login:|login:[\s\S]*FERRY-REPORT-END/.test(text) ? text : undefined;
    },
    420_000,
    2000,
  );
  const bootReport = /FERRY-REPORT-BEGIN([\s\S]*?)FERRY-REPORT-END/.exec(log)?.[1] ?? '';
  assert.match(bootReport, /^\S+ \/ ext4 rw/m, '/ mounted read-write');
  assert.match(bootReport, /^\S+ \/srv ext4 /m, '/srv mounted');
  assert.match(bootReport, new RegExp(`eth0\\s+inet ${guest.facts.address.replace(/\./g, '\\.')}`), 'static address on eth0');
}

test('warm --reboot --fix-guest: a Xen guest pre-copied while it runs, fixed on the target, boots there to its login with its mounts and address', async () => {
  const vm = 'e2e-xen';
  const disk = `${LAB_IMAGE_DIR}/${vm}.raw`;
  for (const h of [a, b]) {
    await cleanVm(h, vm, 0);
    await h.call('file.remove', { path: disk });
  }
  const copy = await a.call('system.run', { file: 'cp', args: ['--sparse=always', guest.disk, disk] });
  assert.equal(copy.exitCode, 0, copy.stderr);
  const paths = labVmPaths(vm);
  // As an operator runs it after a move from Xen: its own bootloader, virtio disk and NIC (the NIC keeps its Xen MAC).
  const argv = labVmArgv({
    name: vm,
    accel: await detectAccel((await ensureTestGuest()).kernel),
    kernel: '',
    append: '',
    memoryMiB: 512,
    disks: [{ path: disk, format: 'raw' }],
    serialLog: paths.serialLog,
    qmpSocket: paths.qmpSocket,
  });
  const k = argv.indexOf('-kernel');
  argv.splice(k, 4);
  argv.push('-netdev', 'user,id=n0,restrict=on', '-device', `virtio-net-pci,netdev=n0,mac=${guest.facts.oldMac}`);
  await a.call('file.mkdir', { path: dirname(paths.serialLog) });
  await a.call('qemu.start', { argv, pidfile: paths.pidfile });
  // Its firmware and GRUB read the disk: the guest runs (and cannot get further here).
  const qmp = await RemoteQmp.open(a, paths.qmpSocket);
  await until(
    'the guest to read its disk',
    async () => {
      const stats = await qmp.execute<Array<{ stats: { rd_bytes: number } }>>('query-blockstats');
      return stats.some((s) => s.stats.rd_bytes > 1024 * 1024) ? true : undefined;
    },
    120_000,
    500,
  );
  await qmp.close();

  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--reboot', '--fix-guest', '--force-off', '--shutdown-timeout', '1', '--json']);
  const report = JSON.parse(r.stdout) as { status: string; mode: string; passes: Array<{ kind: string; stage: string; bytes: number }>; final_pass_bytes: number; guest_fixes: string[] };
  assert.equal(report.status, 'completed', `${r.stdout} ${r.stderr}`);
  assert.equal(report.mode, 'warm');
  assert.equal(report.passes[0]!.kind, 'first');
  assert.equal(report.passes.at(-1)!.stage, 'final');
  assert.ok(report.final_pass_bytes < report.passes[0]!.bytes / 10, `the last pass carried the last writes only: ${report.final_pass_bytes}`);
  for (const fix of ['device-names: /etc/fstab', 'console:', 'initramfs-virtio:']) {
    assert.ok(
      report.guest_fixes.some((f) => f.startsWith(fix)),
      `${fix} in ${report.guest_fixes.join('; ')}`,
    );
  }
  assert.equal(
    (await a.call('qemu.list', undefined)).find((p) => p.name === vm),
    undefined,
    'the source QEMU is gone',
  );

  await assertBootsToLogin(vm);
  for (const h of [a, b]) {
    await cleanVm(h, vm, 0);
    await h.call('file.remove', { path: disk });
  }
});

test('libvirt warm --reboot --force-off --fix-guest: the same Xen guest as a libvirt domain boots on the target to its login with its mounts and address', async () => {
  const vm = 'e2e-xen-lv';
  const disk = `${LAB_IMAGE_DIR}/${vm}.raw`;
  await cleanDomain([a, b], vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
  const copy = await a.call('system.run', { file: 'cp', args: ['--sparse=always', guest.disk, disk] });
  assert.equal(copy.exitCode, 0, copy.stderr);
  const paths = labVmPaths(vm);
  // The lab's domain, booting from its own disk through GRUB, with a virtio NIC that keeps its Xen MAC.
  const xml = labDomainXml({ name: vm, accel: 'tcg', kernel: '', append: '', memoryMiB: 512, disks: [{ path: disk, format: 'raw' }], serialLog: paths.serialLog })
    .replace(/ *<kernel>.*<\/kernel>\n/, "    <boot dev='hd'/>\n")
    .replace(/ *<cmdline>.*<\/cmdline>\n/, '')
    .replace("    <controller type='usb'", `    <interface type='user'><mac address='${guest.facts.oldMac}'/><model type='virtio'/></interface>\n    <controller type='usb'`);
  await a.call('file.mkdir', { path: dirname(paths.serialLog) });
  await a.call('libvirt.define', { xml });
  await a.call('libvirt.start', { domain: vm });

  const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--reboot', '--fix-guest', '--force-off', '--json']);
  const report = JSON.parse(r.stdout) as { status: string; driver: string; passes: Array<{ kind: string; stage: string }>; guest_fixes: string[] };
  assert.equal(report.status, 'completed', `${r.stdout} ${r.stderr}`);
  assert.equal(report.driver, 'libvirt');
  assert.equal(report.passes.at(-1)!.stage, 'final');
  assert.ok(
    report.guest_fixes.some((f) => f.startsWith('initramfs-virtio:')),
    report.guest_fixes.join('; '),
  );
  assert.equal(await domainState('lab-a', vm), undefined, 'undefined on the source');
  await assertBootsToLogin(vm);
  await cleanDomain([a, b], vm, 0);
  for (const h of [a, b]) await h.call('file.remove', { path: disk });
});
