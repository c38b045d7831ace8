import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageInfo } from '../../storage/image-info.js';
import { parseDomainXml } from './domain-xml.js';
import { describeDomain } from './inspect.js';
import { MINI_LIVE_XML, WEB1_INACTIVE_XML } from './test-fixtures.js';

const GiB = 2 ** 30;
const base: ImageInfo = { filename: '/var/lib/libvirt/images/base.qcow2', format: 'qcow2', virtualSize: 10 * GiB, actualSize: 2 * GiB };
const images = new Map<string, ImageInfo[]>([
  [
    '/var/lib/libvirt/images/web1.qcow2',
    [{ filename: '/var/lib/libvirt/images/web1.qcow2', format: 'qcow2', virtualSize: 10 * GiB, actualSize: 300 << 20, backingFilename: base.filename, backingFormat: 'qcow2' }, base],
  ],
  ['/dev/vg0/web1-data', [{ filename: '/dev/vg0/web1-data', format: 'raw', virtualSize: 20 * GiB, actualSize: 0 }]],
  ['/var/lib/libvirt/images/debian-12.iso', [{ filename: '/var/lib/libvirt/images/debian-12.iso', format: 'raw', virtualSize: 600 << 20, actualSize: 600 << 20 }]],
]);

test('describeDomain gives a shut-off domain the shape a QEMU VM has: disks by target with their chains and cache', () => {
  const vm = describeDomain({ name: 'web1', state: 'shut off', description: parseDomainXml(WEB1_INACTIVE_XML) }, images, { hypervisorVersion: '7.2.22' });
  assert.equal(vm.name, 'web1');
  assert.equal(vm.driver, 'libvirt');
  assert.equal(vm.state, 'shut off');
  assert.equal(vm.pid, 0);
  assert.equal(vm.memoryBytes, 512 << 20);
  assert.equal(vm.hypervisorVersion, '7.2.22');
  assert.equal(vm.uuid, 'fcbe96fd-97d4-4abb-a28d-11343e28e5d9');
  assert.deepEqual(vm.disks[0], {
    device: 'vda',
    path: '/var/lib/libvirt/images/web1.qcow2',
    format: 'qcow2',
    virtualSize: 10 * GiB,
    allocatedSize: 300 << 20,
    backingChain: [base],
    cache: { writeback: true, direct: true, noFlush: false },
    readOnly: false,
    kind: 'file',
  });
  assert.equal(vm.disks.find((d) => d.path === '/dev/vg0/web1-data')?.kind, 'block');
  assert.deepEqual(
    vm.disks.map((d) => [d.device, d.path, d.format, d.readOnly]),
    [
      ['vda', '/var/lib/libvirt/images/web1.qcow2', 'qcow2', false],
      ['vdb', '/dev/vg0/web1-data', 'raw', false],
      ['sda', '/var/lib/libvirt/images/debian-12.iso', 'raw', true],
    ],
  );
  assert.deepEqual(vm.unmovableDisks, [{ target: 'vdc', reason: 'volume "data.qcow2" of pool "vmpool" has no path: is the pool active?' }]);
  assert.deepEqual(vm.auxFiles, ['/var/lib/libvirt/boot/vmlinuz-6.1', '/var/lib/libvirt/boot/initrd.img-6.1']);
  assert.deepEqual(vm.chardevFiles, ['/var/log/libvirt/qemu/web1-serial.log']);
  assert.deepEqual(vm.networks, ['private']);
  assert.deepEqual(vm.bridges, ['br0']);
});

test('describeDomain takes a pool volume at the path its host resolved, and skips an empty CD-ROM', () => {
  const description = parseDomainXml(MINI_LIVE_XML);
  description.disks[1]!.path = '/var/lib/libvirt/images/pool/data.qcow2';
  const mini = new Map<string, ImageInfo[]>([
    [
      '/var/lib/libvirt/images/mini.qcow2',
      [
        { filename: '/var/lib/libvirt/images/mini.qcow2', format: 'qcow2', virtualSize: 256 << 20 },
        { ...base, virtualSize: 256 << 20 },
      ],
    ],
    ['/var/lib/libvirt/images/pool/data.qcow2', [{ filename: '/var/lib/libvirt/images/pool/data.qcow2', format: 'qcow2', virtualSize: 64 << 20 }]],
  ]);
  const vm = describeDomain({ name: 'mini', state: 'running', description }, mini, { pid: 4242 });
  assert.deepEqual(
    vm.disks.map((d) => [d.device, d.path, d.backingChain.length, d.cache]),
    [
      ['vda', '/var/lib/libvirt/images/mini.qcow2', 1, { writeback: true, direct: false, noFlush: false }],
      ['vdb', '/var/lib/libvirt/images/pool/data.qcow2', 0, { writeback: true, direct: false, noFlush: false }],
    ],
  );
  assert.deepEqual(
    vm.disks.map((d) => [d.kind, d.volume]),
    [
      ['file', undefined],
      ['volume', { pool: 'vmpool', name: 'data.qcow2' }],
    ],
    'a volume disk keeps its pool and volume, by which the domain names it',
  );
  assert.deepEqual(vm.unmovableDisks, []);
  assert.equal(vm.pid, 4242);
  assert.deepEqual([vm.networks, vm.bridges], [[], []]);
});

test('describeDomain names unreadable images as unmovable, takes a network disk by its URL, and keeps firmware apart from VM files', () => {
  const xml = WEB1_INACTIVE_XML.replace(
    "<boot dev='hd'/>",
    "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>\n    <boot dev='hd'/>",
  ).replace(
    '<devices>',
    "<devices>\n    <disk type='network' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source protocol='rbd' name='pool/img'/>\n      <target dev='vdz' bus='virtio'/>\n    </disk>",
  );
  const vm = describeDomain({ name: 'web1', state: 'shut off', description: parseDomainXml(xml) }, new Map());
  assert.deepEqual(
    vm.unmovableDisks.map((u) => u.target),
    ['vda', 'vdb', 'vdc', 'sda'],
  );
  assert.match(vm.unmovableDisks[0]!.reason, /no image information for "\/var\/lib\/libvirt\/images\/web1.qcow2"/);
  assert.deepEqual(
    vm.disks.map((d) => [d.device, d.kind, d.path, d.format]),
    [['vdz', 'network', 'rbd:///pool/img', 'raw']],
  );
  assert.deepEqual(vm.hostFiles, ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd']);
  // The variable store is the VM's own, carried with it; not a file the target must have already.
  assert.ok(!vm.auxFiles.includes('/var/lib/libvirt/qemu/nvram/web1_VARS.fd'));
  assert.deepEqual(vm.ownFiles, [{ path: '/var/lib/libvirt/qemu/nvram/web1_VARS.fd', what: 'UEFI variable store', template: '/usr/share/OVMF/OVMF_VARS_4M.fd' }]);
  assert.ok(!vm.auxFiles.includes('/usr/share/OVMF/OVMF_CODE_4M.fd'));
});

test("an emulated TPM's state is the domain's own, under its UUID, carried by a live move's stream; a host TPM passed through is a device libvirt does not migrate", () => {
  const xml = (tpm: string): string =>
    `<domain type='qemu'><name>tp</name><uuid>8bf6b435-a56f-4443-8b5e-0f878674eed9</uuid><memory unit='MiB'>256</memory><os><type arch='x86_64'>hvm</type></os><devices>${tpm}</devices></domain>`;
  const emulated = describeDomain({ name: 'tp', state: 'running', description: parseDomainXml(xml(`<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>`)) }, new Map());
  assert.deepEqual(emulated.ownFiles, [
    {
      path: '/var/lib/libvirt/swtpm/8bf6b435-a56f-4443-8b5e-0f878674eed9/tpm2/tpm2-00.permall',
      what: 'TPM state',
      carriedLive: true,
      ownDir: '/var/lib/libvirt/swtpm/8bf6b435-a56f-4443-8b5e-0f878674eed9',
    },
  ]);
  const tpm12 = parseDomainXml(xml(`<tpm model='tpm-tis'><backend type='emulator' version='1.2'/></tpm>`));
  assert.equal(
    describeDomain({ name: 'tp', state: 'running', description: tpm12 }, new Map()).ownFiles?.[0]?.path,
    '/var/lib/libvirt/swtpm/8bf6b435-a56f-4443-8b5e-0f878674eed9/tpm1_2/tpm-00.permall',
  );
  const host = parseDomainXml(xml(`<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>`));
  assert.deepEqual(host.passthrough, ['host TPM /dev/tpm0']);
  assert.equal(host.tpm, undefined);
});
