/**
 * End to end: a real Debian guest disk set up as a Xen domU (fstab and GRUB
 * on /dev/xvda*, console on hvc0, eth0 static and bound to its old MAC, an
 * initramfs with Xen drivers only) is booted as KVM would boot it: virtio
 * disk, virtio NIC with a new MAC, through its own GRUB. It fails; after
 * `ferry guest fix` it reaches its login prompt on ttyS0 with every fstab
 * mount and its static address.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../../src/util/abort.js';
import { run } from '../../src/util/exec.js';
import { runFerry, type FerryRun } from './cli.js';
import { ensureDebianGuest, type DebianGuest } from './debian-guest.js';

const NEW_MAC = '52:54:00:12:34:56';
let work = '';
let guest: DebianGuest;
const timings: Record<string, number> = {};

// A fix rebuilds the guest's initramfs in a chroot: minutes, not seconds.
const ferry = (args: string[]): Promise<FerryRun> => runFerry(args, 20 * 60_000);

async function copyImage(name: string): Promise<string> {
  const to = join(work, name);
  await run('cp', ['--sparse=always', guest.disk, to]);
  return to;
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Boots the disk as KVM would, under TCG, until `done` matches the serial log or the time runs out. */
async function boot(disk: string, log: string, seconds: number, done: RegExp): Promise<string> {
  const qemu = spawn(
    'qemu-system-x86_64',
    [
      // -nographic: GRUB's console output reaches the serial log too, showing the bootloader ran.
      '-accel',
      'tcg',
      '-m',
      '512',
      '-nographic',
      '-monitor',
      'none',
      '-drive',
      `file=${disk},format=raw,if=virtio`,
      '-device',
      `virtio-net-pci,mac=${NEW_MAC},netdev=n`,
      '-netdev',
      'user,id=n,restrict=on',
      '-serial',
      `file:${log}`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => qemu.once('exit', r));
  const deadline = Date.now() + seconds * 1000;
  let text = '';
  try {
    while (Date.now() < deadline) {
      await sleep(2000);
      text = await readFile(log, 'utf8').catch(() => '');
      if (done.test(text)) break;
    }
  } finally {
    qemu.kill('SIGKILL');
    await exited;
  }
  return text;
}

before(async () => {
  guest = await ensureDebianGuest();
  work = await mkdtemp('/var/tmp/ferry-guest-e2e-');
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
  console.log(`guest e2e timings (ms): ${JSON.stringify(timings)}`);
});

test('inspect reports every problem planted in the Xen guest', async () => {
  const disk = await copyImage('inspect.raw');
  const r = await ferry(['guest', 'inspect', '--json', disk]);
  assert.equal(r.code, 0, r.stderr);
  timings.inspect = Math.round(r.ms);
  const report = JSON.parse(r.stdout) as { os: { id: string }; problems: { code: string; message: string }[]; partitionTable: { kind: string }; filesystems: { partition: number; type: string }[] };
  assert.equal(report.os.id, 'debian');
  assert.equal(report.partitionTable.kind, 'mbr');
  assert.deepEqual(
    report.filesystems.map((f) => [f.partition, f.type]),
    [
      [1, 'ext4'],
      [5, 'ext4'],
      [6, 'swap'],
    ],
  );
  const codes = report.problems.map((p) => p.code);
  assert.equal(codes.filter((c) => c === 'fstab-device-name').length, 3, 'xvda1, xvda5, xvda6');
  for (const c of ['boot-device-name', 'grub-disable-uuid', 'console', 'initramfs-driver-missing', 'network-mac-binding', 'network-interface-name']) {
    assert.ok(codes.includes(c), `missing problem ${c}: ${codes.join(', ')}`);
  }
  assert.ok(report.problems.some((p) => p.message.includes(guest.facts.oldMac)));
});

test('the unfixed guest does not come up under KVM virtio', async () => {
  const disk = await copyImage('broken.raw');
  // GRUB paints its menu with terminal escapes, which can land inside a line it prints.
  // eslint-disable-next-line no-control-regex -- a terminal's escape sequences start with ESC
  const log = (await boot(disk, join(work, 'broken.log'), 60, /login:/)).replace(/\x1B(\[[0-9;?]*[A-Za-z]|c)/g, '');
  // GRUB runs (it reads the disk through the BIOS), then the kernel talks to hvc0, which is not
  // there: not one kernel message on ttyS0, no login, and (root=/dev/xvda1, no virtio_blk in the
  // initramfs) the system never starts.
  assert.match(log, /Loading Linux 6\.1/);
  assert.match(log, /Loading initial ramdisk/);
  assert.doesNotMatch(log, /Linux version|Run \/init/);
  assert.doesNotMatch(log, /login:/);
  assert.doesNotMatch(log, /FERRY-REPORT-BEGIN/);
});

test('a dry run shows the fixes and changes nothing', async () => {
  const disk = await copyImage('dry.raw');
  const before = await sha256(disk);
  const r = await ferry(['guest', 'fix', '--dry-run', '--json', disk]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { changes: { operation: string; file: string; diff: string }[] };
  assert.ok(result.changes.some((c) => c.file === '/etc/fstab' && c.diff.includes('+UUID=')));
  assert.equal(await sha256(disk), before);
});

test('after ferry guest fix the guest boots to a login on ttyS0 with its mounts and static address', async () => {
  const disk = await copyImage('fixed.raw');
  const r = await ferry(['guest', 'fix', '--json', disk]);
  assert.equal(r.code, 0, r.stderr);
  timings.fix = Math.round(r.ms);
  const result = JSON.parse(r.stdout) as { changes: { operation: string; file: string; backup?: string }[]; remaining: unknown[] };
  assert.deepEqual(result.remaining, []);
  assert.ok(result.changes.some((c) => c.file === '/etc/fstab' && c.backup === '/etc/fstab.ferry-orig'));
  assert.deepEqual([...new Set(result.changes.map((c) => c.operation))], ['device-names', 'network', 'console', 'initramfs-virtio']);

  const again = await ferry(['guest', 'inspect', '--json', disk]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual((JSON.parse(again.stdout) as { problems: unknown[] }).problems, [], 'the fixed image needs nothing');

  const started = Date.now();
  const log = await boot(disk, join(work, 'fixed.log'), 420, /FERRY-REPORT-END[\s\S]*login:|login:[\s\S]*FERRY-REPORT-END/);
  timings.bootToLogin = Date.now() - started;
  assert.match(log, /login:/, 'a login prompt on ttyS0');
  const report = /FERRY-REPORT-BEGIN([\s\S]*?)FERRY-REPORT-END/.exec(log)?.[1] ?? '';
  assert.match(report, /^\S+ \/ ext4 rw/m, '/ mounted read-write');
  assert.match(report, /^\S+ \/srv ext4 /m, '/srv mounted');
  assert.match(report, /ferry-srv-ok/);
  assert.match(report, /^\/dev\/vda6\s+partition/m, 'swap on');
  assert.match(report, new RegExp(`eth0\\s+inet ${guest.facts.address.replace(/\./g, '\\.')}`), 'static address on eth0');
});
