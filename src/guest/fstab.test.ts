import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFstab, rewriteFstabDevices } from './fstab.js';
import { parseCrypttab, rewriteCrypttabDevices } from './crypttab.js';

// A CentOS 5 Xen domU, a Debian installer's fstab and a hand-edited server.
const XEN_CENTOS = `#
# /etc/fstab
/dev/xvda1              /boot                   ext3    defaults        1 2
/dev/VolGroup00/LogVol00 /                      ext3    defaults        1 1
tmpfs                   /dev/shm                tmpfs   defaults        0 0
devpts                  /dev/pts                devpts  gid=5,mode=620  0 0
sysfs                   /sys                    sysfs   defaults        0 0
proc                    /proc                   proc    defaults        0 0
/dev/xvda3              swap                    swap    defaults        0 0
`;
const DEBIAN = `# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
# / was on /dev/sda1 during installation
UUID=0f3b2e07-7a3c-4b8e-9a43-6a8d1d0f1c11 /               ext4    errors=remount-ro 0       1
# swap was on /dev/sda5 during installation
UUID=9d0c8f61-3f5e-4d1b-8c1a-0f3a8b7e2c45 none            swap    sw              0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
`;
const MIXED = `LABEL=data /srv/data xfs defaults,nofail 0 2
/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:1:0-part1 /backup ext4 defaults 0 2
nas:/export/home /home nfs rw,hard 0 0
/dev/hdb1 /mnt/old\\040disk ext3 noauto 0 0
`;

test('fstab entries from a Xen CentOS guest', () => {
  const e = parseFstab(XEN_CENTOS);
  assert.equal(e.length, 7);
  assert.deepEqual(
    e.map((x) => x.device.kind),
    ['kernel', 'lvm', 'pseudo', 'pseudo', 'pseudo', 'pseudo', 'kernel'],
  );
  assert.deepEqual(
    e.filter((x) => !x.device.survives).map((x) => x.spec),
    ['/dev/xvda1', '/dev/xvda3'],
  );
  assert.equal(e[0]!.pass, 2);
});

test('fstab entries from a Debian installer survive the move', () => {
  const e = parseFstab(DEBIAN);
  assert.deepEqual(
    e.map((x) => x.device.kind),
    ['uuid', 'uuid', 'other'],
  );
  assert.equal(e[2]!.options.includes('noauto'), true);
  assert.equal(e[0]!.mountPoint, '/');
});

test('fstab with labels, by-path, NFS and an escaped mount point', () => {
  const e = parseFstab(MIXED);
  assert.deepEqual(
    e.map((x) => [x.device.kind, x.device.survives]),
    [
      ['label', true],
      ['by-path', false],
      ['network', true],
      ['kernel', false],
    ],
  );
  assert.equal(e[3]!.mountPoint, '/mnt/old disk');
});

test('rewriting fstab devices keeps comments and alignment', () => {
  const out = rewriteFstabDevices(XEN_CENTOS, (x) => (x.spec === '/dev/xvda1' ? 'UUID=1111' : undefined));
  const lines = out.split('\n');
  assert.equal(lines[2], 'UUID=1111              /boot                   ext3    defaults        1 2');
  assert.equal(lines[0], '#');
  assert.equal(out.split('\n').length, XEN_CENTOS.split('\n').length);
  assert.equal(
    rewriteFstabDevices(DEBIAN, () => undefined),
    DEBIAN,
  );
});

test('crypttab names its backing devices in the second field', () => {
  const text = `# <target name> <source device> <key file> <options>
sda5_crypt UUID=2e7d8a2b-7f4a-4c7e-b1a0-9f0a5d2c1e33 none luks,discard
swap /dev/xvda2 /dev/urandom swap,cipher=aes-xts-plain64,size=256
`;
  const e = parseCrypttab(text);
  assert.deepEqual(
    e.map((x) => [x.name, x.device.survives]),
    [
      ['sda5_crypt', true],
      ['swap', false],
    ],
  );
  assert.deepEqual(e[1]!.options, ['swap', 'cipher=aes-xts-plain64', 'size=256']);
  const out = rewriteCrypttabDevices(text, (x) => (x.name === 'swap' ? '/dev/disk/by-partuuid/0a-02' : undefined));
  assert.match(out, /^swap \/dev\/disk\/by-partuuid\/0a-02 \/dev\/urandom swap,/m);
});
