import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ChangeLog } from './change-log.js';
import { FIX_OPERATIONS, type FixContext } from './fixes.js';
import type { Filesystem } from './image.js';
import { readGuestFiles } from './inspect.js';
import { findProblems } from './problems.js';
import { findTarget } from './target.js';

// A CentOS 6 paravirtual Xen guest, as its files were: menu.lst, ifcfg with HWADDR, a getty on hvc0.
const CENTOS_XEN: Record<string, string> = {
  '/etc/redhat-release': 'CentOS release 6.10 (Final)\n',
  '/etc/fstab': '/dev/xvda2 / ext4 defaults 1 1\n/dev/xvda1 /boot ext4 defaults 1 2\n/dev/xvda3 swap swap defaults 0 0\nproc /proc proc defaults 0 0\n',
  '/boot/grub/menu.lst':
    'default=0\ntimeout=5\ntitle CentOS (2.6.32-754.el6.x86_64)\n\troot (hd0,0)\n\tkernel /vmlinuz-2.6.32-754.el6.x86_64 ro root=/dev/xvda2 console=hvc0 resume=/dev/xvda3\n\tinitrd /initramfs-2.6.32-754.el6.x86_64.img\n',
  '/etc/sysconfig/network-scripts/ifcfg-eth0': 'DEVICE=eth0\nBOOTPROTO=static\nHWADDR=00:16:3E:5E:1F:01\nIPADDR=192.168.10.21\nNETMASK=255.255.255.0\nONBOOT=yes\n',
  '/etc/inittab': 'id:3:initdefault:\nco:2345:respawn:/sbin/agetty hvc0 9600 vt100-nav\n',
  '/etc/securetty': 'console\nhvc0\n',
  '/etc/blkid/blkid.tab': '<device DEVNO="0xca02" TIME="1" UUID="aaaa" TYPE="ext4">/dev/xvda2</device>\n',
  '/boot/vmlinuz-2.6.32-754.el6.x86_64': '',
  '/lib/modules/2.6.32-754.el6.x86_64/modules.dep':
    'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/net/virtio_net.ko:\nkernel/drivers/virtio/virtio_pci.ko:\n',
  '/lib/modules/2.6.32-754.el6.x86_64/modules.builtin': '',
};

const FILESYSTEMS: Filesystem[] = [
  { partition: 1, device: '/dev/loop1', type: 'ext4', uuid: '11111111-1111-1111-1111-111111111111', offset: 1 << 20, size: 256 << 20 },
  { partition: 2, device: '/dev/loop2', type: 'ext4', uuid: '22222222-2222-2222-2222-222222222222', offset: 257 << 20, size: 4 << 30 },
  { partition: 3, device: '/dev/loop3', type: 'swap', uuid: '33333333-3333-3333-3333-333333333333', offset: 5 << 30, size: 1 << 30 },
];

async function makeTree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ferry-guest-tree-'));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

async function fix(root: string, dryRun: boolean, macs: [string, string][] = []): Promise<ChangeLog> {
  const target = findTarget('kvm-virtio');
  const log = new ChangeLog(root, dryRun);
  const ctx: FixContext = { root, guest: await readGuestFiles(root), filesystems: FILESYSTEMS, target, log, macMap: new Map(macs), uuidRewrites: new Map() };
  for (const op of FIX_OPERATIONS.filter((o) => o.name !== 'initramfs-virtio')) {
    log.operation = op.name;
    await op.apply(ctx);
  }
  return log;
}

test('inspecting a CentOS Xen guest finds its device names, console, MAC binding and stale cache', async () => {
  const root = await makeTree(CENTOS_XEN);
  try {
    const g = await readGuestFiles(root);
    assert.equal(g.os?.id, 'centos');
    assert.deepEqual(
      g.kernels.map((k) => [k.version, k.drivers.virtio_blk]),
      [['2.6.32-754.el6.x86_64', 'module']],
    );
    assert.deepEqual(g.console, { kernel: ['hvc0'], gettys: ['hvc0'] });
    const codes = findProblems(g, findTarget('kvm-virtio'), FILESYSTEMS).map((p) => p.code);
    assert.deepEqual(codes.sort(), [
      'boot-device-name',
      'boot-device-name',
      'console',
      'console-getty',
      'fstab-device-name',
      'fstab-device-name',
      'fstab-device-name',
      'network-mac-binding',
      'stale-cache',
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a dry run records every diff and writes nothing', async () => {
  const root = await makeTree(CENTOS_XEN);
  try {
    const log = await fix(root, true);
    assert.ok(log.changes.length >= 6);
    assert.equal(await readFile(join(root, 'etc/fstab'), 'utf8'), CENTOS_XEN['/etc/fstab']);
    await assert.rejects(readFile(join(root, 'etc/fstab.ferry-orig')));
    const menu = log.changes.filter((c) => c.file === '/boot/grub/menu.lst');
    // Later operations build on earlier ones even on a dry run: the last diff has both edits.
    assert.match(menu[menu.length - 1]!.diff, /\+\tkernel \/vmlinuz-2.6.32-754.el6.x86_64 ro root=UUID=22222222-2222-2222-2222-222222222222 console=ttyS0,115200n8 resume=UUID=33333333/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('fixing rewrites files, keeps originals and leaves no problem', async () => {
  const root = await makeTree(CENTOS_XEN);
  try {
    const log = await fix(root, false, [['00:16:3e:5e:1f:01', '52:54:00:12:34:56']]);
    const fstab = await readFile(join(root, 'etc/fstab'), 'utf8');
    assert.equal(
      fstab,
      'UUID=22222222-2222-2222-2222-222222222222 / ext4 defaults 1 1\nUUID=11111111-1111-1111-1111-111111111111 /boot ext4 defaults 1 2\nUUID=33333333-3333-3333-3333-333333333333 swap swap defaults 0 0\nproc /proc proc defaults 0 0\n',
    );
    assert.equal(await readFile(join(root, 'etc/fstab.ferry-orig'), 'utf8'), CENTOS_XEN['/etc/fstab']);
    assert.match(await readFile(join(root, 'etc/sysconfig/network-scripts/ifcfg-eth0'), 'utf8'), /^HWADDR=52:54:00:12:34:56$/m);
    assert.match(await readFile(join(root, 'etc/inittab'), 'utf8'), /^S0:2345:respawn:\/sbin\/agetty ttyS0 9600/m);
    assert.match(await readFile(join(root, 'etc/securetty'), 'utf8'), /^ttyS0$/m);
    assert.equal(await readFile(join(root, 'etc/blkid/blkid.tab.ferry-orig'), 'utf8'), CENTOS_XEN['/etc/blkid/blkid.tab']);
    assert.ok(log.changes.every((c) => c.kind !== 'edit' || c.diff.startsWith('--- a/')));
    assert.deepEqual(findProblems(await readGuestFiles(root), findTarget('kvm-virtio'), FILESYSTEMS, ['52:54:00:12:34:56']), []);
    // A second fix changes nothing and keeps the first originals.
    assert.deepEqual((await fix(root, false, [['00:16:3e:5e:1f:01', '52:54:00:12:34:56']])).changes, []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('without --mac the MAC binding is dropped and kernel names are pinned', async () => {
  const root = await makeTree({
    ...CENTOS_XEN,
    '/lib/udev/rules.d/80-net-setup-link.rules': '# predictable names\n',
    '/etc/udev/rules.d/70-persistent-net.rules': 'SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="00:16:3e:5e:1f:01", KERNEL=="eth*", NAME="eth0"\n',
  });
  try {
    await fix(root, false);
    assert.doesNotMatch(await readFile(join(root, 'etc/sysconfig/network-scripts/ifcfg-eth0'), 'utf8'), /^HWADDR=/m);
    assert.match(await readFile(join(root, 'etc/udev/rules.d/70-persistent-net.rules'), 'utf8'), /^# disabled by ferry/);
    assert.match(await readFile(join(root, 'boot/grub/menu.lst'), 'utf8'), / net\.ifnames=0$/m);
    assert.deepEqual(findProblems(await readGuestFiles(root), findTarget('kvm-virtio'), FILESYSTEMS), []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('absolute symlinks inside the guest resolve against its root', async () => {
  const root = await makeTree({ '/usr/lib/os-release': 'ID=ubuntu\nNAME=Ubuntu\n' });
  try {
    await mkdir(join(root, 'etc'), { recursive: true });
    await symlink('/usr/lib/os-release', join(root, 'etc/os-release'));
    assert.equal((await readGuestFiles(root)).os?.id, 'ubuntu');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
