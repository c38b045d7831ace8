import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapeXml, labDomainXml, virtioDiskName, type LabDomainOptions } from './domain-xml.js';
import { labDiskPath, labVmPaths } from './vm.js';

const vm: LabDomainOptions = {
  name: 'web01',
  kernel: '/var/cache/ferry/test-guest/vmlinuz',
  initrd: '/var/cache/ferry/test-guest/initrd.gz',
  append: 'console=ttyS0 ferry.dirty=16',
  accel: 'tcg',
  disks: [
    { path: labDiskPath('web01', 0), format: 'qcow2' },
    { path: '/var/lib/ferry/images/data.raw', format: 'raw' },
  ],
  serialLog: labVmPaths('web01').serialLog,
};

test('a TCG lab domain is type qemu with a named CPU model that may not fall back', () => {
  const xml = labDomainXml(vm);
  assert.match(xml, /^<domain type='qemu'>/);
  assert.match(xml, /<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64<\/model><\/cpu>/);
  assert.match(labDomainXml({ ...vm, cpuModel: 'Nehalem' }), /<model fallback='forbid'>Nehalem<\/model>/);
});

test('a KVM lab domain is type kvm with the host CPU passed through', () => {
  const xml = labDomainXml({ ...vm, accel: 'kvm' });
  assert.match(xml, /^<domain type='kvm'>/);
  assert.match(xml, /<cpu mode='host-passthrough'\/>/);
  assert.doesNotMatch(xml, /<model/);
});

test("a lab domain runs the emulator it is given (the lab's TCG wrapper), else libvirt's choice", () => {
  assert.match(labDomainXml({ ...vm, emulator: '/var/lib/ferry-lab/qemu-system-x86_64-tcg' }), /<devices>\n {4}<emulator>\/var\/lib\/ferry-lab\/qemu-system-x86_64-tcg<\/emulator>/);
  assert.doesNotMatch(labDomainXml(vm), /<emulator>/);
});

test('each lab disk is one virtio disk with its format, no host page cache and thread I/O, in order', () => {
  const disks = [...labDomainXml(vm).matchAll(/<disk [\s\S]*?<\/disk>/g)].map((m) => m[0]);
  assert.equal(disks.length, 2);
  assert.match(disks[0]!, /<driver name='qemu' type='qcow2' cache='none' io='threads'\/>/);
  assert.match(disks[0]!, /<source file='\/var\/lib\/ferry\/images\/web01-disk0.qcow2'\/>/);
  assert.match(disks[0]!, /<target dev='vda' bus='virtio'\/>/);
  assert.match(disks[1]!, /type='raw'/);
  assert.match(disks[1]!, /<target dev='vdb' bus='virtio'\/>/);
  assert.match(labDomainXml({ ...vm, cache: 'writeback' }), /cache='writeback'/);
});

test('the console is appended to the same file as a plain lab VM, and the domain has no network', () => {
  const xml = labDomainXml(vm);
  assert.match(xml, /<serial type='file'>\s*<source path='\/var\/lib\/ferry\/vms\/web01.serial.log' append='on'\/>/);
  assert.doesNotMatch(xml, /<interface/);
  assert.match(xml, /<kernel>\/var\/cache\/ferry\/test-guest\/vmlinuz<\/kernel>/);
  assert.match(xml, /<initrd>/);
  assert.doesNotMatch(labDomainXml({ ...vm, initrd: undefined }), /<initrd>/);
  assert.match(xml, /<memory unit='MiB'>256<\/memory>/);
  assert.match(labDomainXml({ ...vm, memoryMiB: 512 }), /<memory unit='MiB'>512<\/memory>/);
});

test('names, paths and the command line are escaped', () => {
  assert.equal(escapeXml(`a&b<c>"d'`), 'a&amp;b&lt;c&gt;&quot;d&apos;');
  const xml = labDomainXml({ ...vm, append: 'console=ttyS0 x="<1>" & y', disks: [{ path: "/images/it's.qcow2", format: 'qcow2' }] });
  assert.match(xml, /<cmdline>console=ttyS0 x=&quot;&lt;1&gt;&quot; &amp; y<\/cmdline>/);
  assert.match(xml, /<source file='\/images\/it&apos;s.qcow2'\/>/);
});

test('virtio disks are named as Linux names them', () => {
  assert.deepEqual([0, 1, 25, 26, 27, 701, 702].map(virtioDiskName), ['vda', 'vdb', 'vdz', 'vdaa', 'vdab', 'vdzz', 'vdaaa']);
});

test('a lab disk that is a pool volume is named by its pool and volume', () => {
  const xml = labDomainXml({ ...vm, disks: [{ path: '/var/lib/libvirt/images/web01.qcow2', format: 'qcow2', volume: { pool: 'default', name: 'web01.qcow2' } }] });
  assert.match(xml, /<disk type='volume' device='disk'>\s*<driver name='qemu' type='qcow2'[^>]*\/>\s*<source pool='default' volume='web01\.qcow2'\/>\s*<target dev='vda' bus='virtio'\/>/);
  assert.doesNotMatch(xml, /source file=/);
});

test('a lab disk that is an NBD export is a network disk', () => {
  const xml = labDomainXml({ ...vm, disks: [{ path: 'nbd://127.0.0.1:10850/rec', format: 'raw', nbd: { host: '127.0.0.1', port: 10850, name: 'rec' } }] });
  assert.match(xml, /<disk type='network' device='disk'>\s*<driver name='qemu' type='raw'[^>]*\/>\s*<source protocol='nbd' name='rec'><host name='127\.0\.0\.1' port='10850'\/><\/source>/);
});

test('a UEFI lab domain boots read-only OVMF code with a variable store of its own, made from the template', () => {
  const xml = labDomainXml({ ...vm, uefi: { loader: '/usr/share/OVMF/OVMF_CODE_4M.fd', template: '/usr/share/OVMF/OVMF_VARS_4M.fd', nvram: '/var/lib/libvirt/qemu/nvram/web01_VARS.fd' } });
  assert.match(xml, /<loader readonly='yes' type='pflash'>\/usr\/share\/OVMF\/OVMF_CODE_4M.fd<\/loader>/);
  assert.match(xml, /<nvram template='\/usr\/share\/OVMF\/OVMF_VARS_4M.fd'>\/var\/lib\/libvirt\/qemu\/nvram\/web01_VARS.fd<\/nvram>/);
  assert.doesNotMatch(labDomainXml(vm), /<loader|<nvram/);
});

test('a lab domain with a TPM has an emulated TPM 2.0', () => {
  assert.match(labDomainXml({ ...vm, tpm: true }), /<tpm model='tpm-crb'><backend type='emulator' version='2.0'\/><\/tpm>/);
  assert.doesNotMatch(labDomainXml(vm), /<tpm/);
});

test('an iSCSI LUN is a network disk named IQN/LUN, logged in to with the secret whose usage is the IQN when a user is given', () => {
  const iscsi = { host: '127.0.0.21', port: 3260, target: 'iqn.2026-12.org.ferry:lab', lun: 1 };
  const withUser = labDomainXml({ ...vm, disks: [{ path: 'iscsi://ferry@127.0.0.21:3260/iqn.2026-12.org.ferry:lab/1', format: 'raw', iscsi: { ...iscsi, user: 'ferry' } }] });
  assert.match(
    withUser,
    /<disk type='network' device='disk'>\s*<driver[^>]*\/>\s*<source protocol='iscsi' name='iqn\.2026-12\.org\.ferry:lab\/1'><host name='127\.0\.0\.21' port='3260'\/><auth username='ferry'><secret type='iscsi' usage='iqn\.2026-12\.org\.ferry:lab'\/><\/auth><\/source>/,
  );
  const open = labDomainXml({ ...vm, disks: [{ path: 'iscsi://127.0.0.21:3260/iqn.2026-12.org.ferry:lab/1', format: 'raw', iscsi }] });
  assert.doesNotMatch(open, /<auth/);
});
