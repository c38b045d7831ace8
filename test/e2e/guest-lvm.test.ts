/**
 * `ferry guest inspect|fix` on a guest whose / is an LVM logical volume, on
 * this host without device-mapper. The image is built without activating
 * anything: the LVM tools write the PV/VG/LV metadata (lvcreate --activate n
 * --driverloaded n), and the root filesystem is written straight into the
 * LV's extents through a loop device at their offset.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from '../../src/util/exec.js';
import { runFerry as ferry } from './cli.js';

const MiB = 1 << 20;
const BOOT_SECTORS = 64 * 2048;
const PV_OFFSET = (2048 + BOOT_SECTORS) * 512;
let work = '';
let disk = '';
let bootUuid = '';
/** Where the root LV's bytes are on the disk, as the LVM tools report them. */
let rootOnDisk = { offset: 0, size: 0 };

async function tree(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return dir;
}

async function withLoop<T>(offset: number, size: number, use: (dev: string) => Promise<T>): Promise<T> {
  const dev = (await run('losetup', ['-f', '--show', '--offset', String(offset), '--sizelimit', String(size), disk])).stdout.trim();
  try {
    return await use(dev);
  } finally {
    await run('losetup', ['-d', dev], { allowFailure: true });
  }
}

/** The LVM tools, seeing only `dev`, writing no backup and never touching device-mapper. */
async function lvm(tool: string, dev: string, args: string[]): Promise<string> {
  const config = `devices { filter=["a|^${dev}$|","r|.*|"] global_filter=["a|^${dev}$|","r|.*|"] use_devicesfile=0 obtain_device_list_from_udev=0 hints="none" } activation { udev_sync=0 udev_rules=0 monitoring=0 } backup { backup=0 archive=0 }`;
  return (await run(tool, ['--config', config, ...args], { env: { LVM_SUPPRESS_FD_WARNINGS: '1' } })).stdout;
}

/** Byte range of a one-segment LV inside the PV, from lvs and pvs as LVM reports them. */
async function lvRange(dev: string, lv: string): Promise<{ offset: number; size: number }> {
  const peStart = Number((await lvm('pvs', dev, ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'pe_start', dev])).trim());
  const [ranges, extent] = (await lvm('lvs', dev, ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'seg_pe_ranges,vg_extent_size', `vg0/${lv}`])).trim().split(/\s+/);
  const m = /:(\d+)-(\d+)$/.exec(ranges!)!;
  return { offset: peStart + Number(m[1]) * Number(extent), size: (Number(m[2]) - Number(m[1]) + 1) * Number(extent) };
}

before(async () => {
  work = await mkdtemp('/var/tmp/ferry-guest-lvm-');
  disk = join(work, 'lvm.raw');
  await run('truncate', ['-s', '256M', disk]);
  await run('sfdisk', ['-q', disk], { input: `label: dos\nstart=2048, size=${BOOT_SECTORS}, type=83\ntype=8e\n` });
  const boot = await tree('boot', {
    '/grub/grub.cfg': "menuentry 'Debian GNU/Linux' {\n\tlinux /vmlinuz root=/dev/mapper/vg0-root ro console=hvc0\n}\n",
  });
  await run('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, '-d', boot, disk, '64M']);
  bootUuid = (await withLoop(2048 * 512, 64 * MiB, async (d) => run('blkid', ['-p', '-s', 'UUID', '-o', 'value', d]))).stdout.trim();
  const root = await tree('root', {
    '/etc/os-release': 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    '/etc/fstab': '/dev/mapper/vg0-root / ext4 errors=remount-ro 0 1\n/dev/xvda1 /boot ext4 defaults 0 2\n/dev/vg0/swap none swap sw 0 0\nproc /proc proc defaults 0 0\n',
    '/boot/.keep': '',
  });
  const pvSize = 256 * MiB - PV_OFFSET;
  const lvs = await withLoop(PV_OFFSET, pvSize, async (pv) => {
    await lvm('pvcreate', pv, ['-q', pv]);
    await lvm('vgcreate', pv, ['-q', 'vg0', pv]);
    const create = ['--driverloaded', 'n', '--activate', 'n', '--zero', 'n', '-q'];
    await lvm('lvcreate', pv, [...create, '-n', 'root', '-L', '120M', 'vg0']);
    await lvm('lvcreate', pv, [...create, '-n', 'var', '-L', '8M', 'vg0']);
    await lvm('lvcreate', pv, [...create, '-n', 'swap', '-L', '16M', 'vg0']);
    // Extended after swap, so var is two runs of extents: only device-mapper could join them.
    await lvm('lvextend', pv, ['--driverloaded', 'n', '-q', '-L', '+8M', 'vg0/var']);
    return { root: await lvRange(pv, 'root'), swap: await lvRange(pv, 'swap') };
  });
  rootOnDisk = { offset: PV_OFFSET + lvs.root.offset, size: lvs.root.size };
  await run('mkfs.ext4', ['-q', '-F', '-E', `offset=${PV_OFFSET + lvs.root.offset}`, '-d', root, disk, `${lvs.root.size / 1024}k`]);
  await withLoop(PV_OFFSET + lvs.swap.offset, lvs.swap.size, (d) => run('mkswap', ['-q', d]));
});

after(async () => {
  if (work && !process.env.FERRY_KEEP_TEST_FILES) await rm(work, { recursive: true, force: true });
});

interface LvmJson {
  physicalVolumes: number[];
  volumeGroups: {
    name: string;
    extentSize: number;
    physicalVolumes: { partition?: number }[];
    logicalVolumes: {
      name: string;
      path: string;
      mapperPath: string;
      size: number;
      mapped: boolean;
      notMappedBecause?: string;
      segments: { ranges: { partition?: number }[] }[];
      filesystem?: { type?: string; mountPoint?: string };
    }[];
  }[];
}

interface ReportJson {
  os?: { name: string };
  filesystems: { partition: number; type?: string; uuid?: string; mountPoint?: string; lv?: { vg: string; name: string } }[];
  fstab: { spec: string; mountPoint: string; device: { survives: boolean } }[];
  lvm: LvmJson;
  problems: { code: string; message: string }[];
}

async function loopsOnDisk(): Promise<string> {
  return (await run('losetup', ['-j', disk])).stdout.trim();
}

test('inspect finds the OS on the LV root, lists the volume group and reports what breaks', async () => {
  const r = await ferry(['guest', 'inspect', '--json', disk]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as ReportJson;
  assert.match(report.os?.name ?? '', /Debian/);
  const rootFs = report.filesystems.find((f) => f.mountPoint === '/');
  assert.deepEqual([rootFs?.lv?.vg, rootFs?.lv?.name], ['vg0', 'root']);
  assert.equal(rootFs?.type, 'ext4');
  assert.equal(report.filesystems.find((f) => f.mountPoint === '/boot')?.partition, 1);

  assert.deepEqual(report.lvm.physicalVolumes, [2]);
  assert.equal(report.lvm.volumeGroups.length, 1);
  const vg = report.lvm.volumeGroups[0]!;
  assert.equal(vg.name, 'vg0');
  assert.deepEqual(
    vg.physicalVolumes.map((p) => p.partition),
    [2],
  );
  const lv = (name: string) => vg.logicalVolumes.find((l) => l.name === name)!;
  assert.deepEqual(vg.logicalVolumes.map((l) => l.name).sort(), ['root', 'swap', 'var']);
  assert.equal(lv('root').mapped, true);
  assert.equal(lv('root').size, 120 * MiB);
  assert.equal(lv('root').path, '/dev/vg0/root');
  assert.equal(lv('root').mapperPath, '/dev/mapper/vg0-root');
  assert.deepEqual(lv('root').filesystem && { type: lv('root').filesystem!.type, at: lv('root').filesystem!.mountPoint }, { type: 'ext4', at: '/' });
  assert.equal(lv('swap').mapped, true);
  assert.equal(lv('swap').filesystem?.type, 'swap');
  assert.equal(lv('var').mapped, false);
  assert.equal(lv('var').segments.length, 2);
  assert.equal(lv('var').segments[0]!.ranges[0]!.partition, 2);
  assert.match(lv('var').notMappedBecause ?? '', /2 segments/);

  // LVM names are stable; only the Xen disk name breaks, and the Xen console.
  assert.deepEqual(
    report.fstab.filter((e) => e.spec.includes('vg0')).map((e) => e.device.survives),
    [true, true],
  );
  assert.deepEqual(report.problems.map((p) => p.code).sort(), ['console', 'fstab-device-name']);
  assert.match(report.problems.find((p) => p.code === 'fstab-device-name')!.message, /\/boot from "\/dev\/xvda1"/);
  assert.match(report.problems.find((p) => p.code === 'console')!.message, /hvc0/);
  assert.equal(await loopsOnDisk(), '', 'every loop device is detached');

  const human = await ferry(['guest', 'inspect', disk]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /Volume group vg0: \d+ MiB/);
  assert.match(human.stdout, /\/dev\/vg0\/root \(\/dev\/mapper\/vg0-root\) 120 MiB \[linear p2:\d+-\d+\]: ext4 UUID=\S+ on \//);
  assert.match(human.stdout, /\/dev\/vg0\/var .*not mapped: it has 2 segments/);
});

test('fix rewrites fstab and the console on the LV filesystem and the boot partition', async () => {
  const r = await ferry(['guest', 'fix', '--json', disk]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { changes: { file?: string }[]; remaining: { code: string }[] };
  assert.deepEqual(result.remaining, []);
  assert.ok(result.changes.some((c) => c.file === '/etc/fstab'));
  assert.equal(await loopsOnDisk(), '', 'every loop device is detached');

  // Read back through ferry, then byte for byte where the LVM tools say the LV lies (debugfs, no mount).
  const report = JSON.parse((await ferry(['guest', 'inspect', '--json', disk])).stdout) as ReportJson;
  assert.deepEqual(report.problems, []);
  assert.deepEqual(
    report.fstab.map((e) => e.spec),
    ['/dev/mapper/vg0-root', `UUID=${bootUuid}`, '/dev/vg0/swap', 'proc'],
  );
  assert.equal(report.filesystems.find((f) => f.lv?.name === 'root')?.type, 'ext4');
  const fstab = await withLoop(rootOnDisk.offset, rootOnDisk.size, async (d) => (await run('debugfs', ['-R', 'cat /etc/fstab', d])).stdout);
  assert.match(fstab, new RegExp(`^UUID=${bootUuid} /boot ext4 defaults 0 2$`, 'm'));
  assert.match(fstab, /^\/dev\/mapper\/vg0-root \/ ext4/m);
  const grub = await withLoop(2048 * 512, 64 * MiB, async (d) => (await run('debugfs', ['-R', 'cat /grub/grub.cfg', d])).stdout);
  assert.match(grub, /linux \/vmlinuz root=\/dev\/mapper\/vg0-root ro console=ttyS0,115200n8/);
  assert.doesNotMatch(grub, /hvc0/);
});

test('--restore-uuids gives a root LV whose filesystem UUID changed its old UUID back', async () => {
  const moved = join(work, 'moved.raw');
  await run('cp', ['--sparse=always', disk, moved]);
  const NEW = '11111111-2222-4333-8444-555555555555';
  const old = (await withLoop(rootOnDisk.offset, rootOnDisk.size, (d) => run('blkid', ['-p', '-s', 'UUID', '-o', 'value', d]))).stdout.trim();
  const dev = (await run('losetup', ['-f', '--show', '--offset', String(rootOnDisk.offset), '--sizelimit', String(rootOnDisk.size), moved])).stdout.trim();
  try {
    await run('e2fsck', ['-f', '-p', dev]);
    await run('tune2fs', ['-f', '-U', NEW, dev]);
  } finally {
    await run('losetup', ['-d', dev]);
  }
  const r = await ferry(['guest', 'fix', '--restore-uuids', disk, moved]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`tune2fs -f -U ${old} \\S+ +# logical volume vg0/root: ${NEW} -> ${old}`));
  const report = JSON.parse((await ferry(['guest', 'inspect', '--json', moved])).stdout) as ReportJson;
  assert.equal(report.filesystems.find((f) => f.lv?.name === 'root')?.uuid, old);
  assert.equal((await run('losetup', ['-j', moved])).stdout.trim(), '');
});
