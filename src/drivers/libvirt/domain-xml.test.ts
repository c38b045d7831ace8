import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../util/errors.js';
import { definableDomainXml, diskMoves, domainCpuXml, mapDiskSources, parseDomainXml } from './domain-xml.js';
import { MINI_INACTIVE_XML, MINI_LIVE_XML, WEB1_INACTIVE_XML } from './test-fixtures.js';

test('parseDomainXml reads a shut-off domain: identity, memory in KiB, custom CPU, kernel boot', () => {
  const d = parseDomainXml(WEB1_INACTIVE_XML);
  assert.equal(d.name, 'web1');
  assert.equal(d.uuid, 'fcbe96fd-97d4-4abb-a28d-11343e28e5d9');
  assert.equal(d.type, 'qemu');
  assert.equal(d.id, undefined);
  assert.equal(d.memoryBytes, 512 * 2 ** 20);
  assert.equal(d.currentMemoryBytes, 512 * 2 ** 20);
  assert.equal(d.vcpus, 2);
  assert.equal(d.emulator, '/usr/bin/qemu-system-x86_64');
  assert.deepEqual(d.cpu, {
    mode: 'custom',
    match: 'exact',
    check: 'partial',
    model: 'Haswell-noTSX',
    fallback: 'forbid',
    vendor: undefined,
    features: [
      { name: 'vmx', policy: 'require' },
      { name: 'hle', policy: 'disable' },
      { name: 'avx512f', policy: 'optional' },
    ],
  });
  assert.deepEqual(d.os, {
    type: 'hvm',
    arch: 'x86_64',
    machine: 'pc-i440fx-7.2',
    kernel: '/var/lib/libvirt/boot/vmlinuz-6.1',
    initrd: '/var/lib/libvirt/boot/initrd.img-6.1',
    cmdline: 'console=ttyS0 root=/dev/vda1',
    dtb: undefined,
    loader: undefined,
    nvram: undefined,
    boot: ['hd'],
  });
});

test('parseDomainXml reads file, block, volume and CD-ROM disks with their driver and backing chain', () => {
  const [qcow2, block, volume, cdrom] = parseDomainXml(WEB1_INACTIVE_XML).disks;
  assert.deepEqual(qcow2, {
    device: 'disk',
    type: 'file',
    path: '/var/lib/libvirt/images/web1.qcow2',
    pool: undefined,
    volume: undefined,
    network: undefined,
    format: 'qcow2',
    cache: 'none',
    io: 'native',
    discard: 'unmap',
    target: 'vda',
    bus: 'virtio',
    readOnly: false,
    shareable: false,
    backingChain: [{ type: 'file', format: 'qcow2', path: '/var/lib/libvirt/images/base.qcow2' }],
  });
  assert.equal(block!.type, 'block');
  assert.equal(block!.path, '/dev/vg0/web1-data');
  assert.equal(block!.format, 'raw');
  assert.equal(block!.shareable, true);
  assert.deepEqual([volume!.type, volume!.pool, volume!.volume, volume!.path, volume!.target], ['volume', 'vmpool', 'data.qcow2', undefined, 'vdc']);
  assert.deepEqual([cdrom!.device, cdrom!.readOnly, cdrom!.bus, cdrom!.path], ['cdrom', true, 'sata', '/var/lib/libvirt/images/debian-12.iso']);
});

test('parseDomainXml reads interfaces, serial log files and graphics', () => {
  const d = parseDomainXml(WEB1_INACTIVE_XML);
  assert.deepEqual(d.interfaces, [
    { type: 'network', source: 'private', sourceMode: undefined, mac: '52:54:00:6b:3c:58', model: 'virtio' },
    { type: 'bridge', source: 'br0', sourceMode: undefined, mac: '52:54:00:11:22:33', model: 'e1000' },
  ]);
  assert.deepEqual(d.chardevFiles, ['/var/log/libvirt/qemu/web1-serial.log']);
  assert.deepEqual(d.graphics, [{ type: 'vnc', port: -1, autoport: true, listen: '127.0.0.1' }]);
});

test('parseDomainXml reads a running domain: its id, the chain libvirt found, an empty CD-ROM, user networking', () => {
  const d = parseDomainXml(MINI_LIVE_XML);
  assert.equal(d.id, 2);
  assert.equal(d.memoryBytes, 64 * 2 ** 20);
  assert.deepEqual(
    d.cpu?.features.map((f) => f.name),
    ['hypervisor', 'lahf_lm'],
  );
  const [top, volume, cdrom] = d.disks;
  assert.deepEqual(top!.backingChain, [{ type: 'file', format: 'qcow2', path: '/var/lib/libvirt/images/base.qcow2' }]);
  assert.deepEqual(volume!.backingChain, [], 'an empty <backingStore/> says there is no backing image');
  assert.equal(cdrom!.path, undefined);
  assert.deepEqual(d.interfaces, [{ type: 'user', source: undefined, sourceMode: undefined, mac: '52:54:00:aa:bb:cc', model: 'virtio' }]);
  assert.deepEqual(d.graphics[0], { type: 'vnc', port: 5900, autoport: true, listen: '127.0.0.1' });
});

test('parseDomainXml honours libvirt units: KB is 1000 bytes, k and KiB 1024, GiB, bytes', () => {
  const withMemory = (memory: string) => MINI_INACTIVE_XML.replace("<memory unit='KiB'>65536</memory>", memory);
  assert.equal(parseDomainXml(withMemory("<memory unit='KB'>65536</memory>")).memoryBytes, 65_536_000);
  assert.equal(parseDomainXml(withMemory("<memory unit='k'>65536</memory>")).memoryBytes, 64 * 2 ** 20);
  assert.equal(parseDomainXml(withMemory("<memory unit='GiB'>2</memory>")).memoryBytes, 2 * 2 ** 30);
  assert.equal(parseDomainXml(withMemory("<memory unit='G'>2</memory>")).memoryBytes, 2 * 2 ** 30);
  assert.equal(parseDomainXml(withMemory("<memory unit='bytes'>1048576</memory>")).memoryBytes, 2 ** 20);
  assert.equal(parseDomainXml(withMemory('<memory>1024</memory>')).memoryBytes, 2 ** 20, 'no unit means KiB');
});

test('parseDomainXml reads firmware, its variable store and network disks', () => {
  const xml = MINI_INACTIVE_XML.replace(
    "<boot dev='hd'/>",
    "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\n    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/mini_VARS.fd</nvram>\n    <boot dev='hd'/>",
  ).replace(
    '<devices>',
    "<devices>\n    <disk type='network' device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source protocol='nbd' name='export1'>\n        <host name='10.0.0.5' port='10809'/>\n      </source>\n      <target dev='vdz' bus='virtio'/>\n    </disk>",
  );
  const d = parseDomainXml(xml);
  assert.deepEqual(d.os.loader, { path: '/usr/share/OVMF/OVMF_CODE_4M.fd', readOnly: true, type: 'pflash' });
  assert.deepEqual(d.os.nvram, { path: '/var/lib/libvirt/qemu/nvram/mini_VARS.fd', template: '/usr/share/OVMF/OVMF_VARS_4M.fd' });
  assert.deepEqual(d.disks[0]!.network, { protocol: 'nbd', name: 'export1', hosts: [{ name: '10.0.0.5', port: 10809 }] });
});

test('parseDomainXml refuses what is not a domain with a hint', () => {
  for (const xml of ['<domain><name>x</domain>', '<network><name>default</name></network>', '', "<domain type='qemu'><memory>1</memory></domain>"]) {
    assert.throws(
      () => parseDomainXml(xml),
      (e: unknown) => e instanceof FerryError && e.code === 'BAD_FORMAT' && /virsh dumpxml/.test(e.hint ?? ''),
      xml,
    );
  }
});

test('an untouched domain serialises to the same description (only the quotes change)', () => {
  for (const xml of [WEB1_INACTIVE_XML, MINI_LIVE_XML]) {
    const mapped = mapDiskSources(xml, []);
    assert.equal(mapped.replaceAll('"', "'"), xml.trimEnd());
    assert.deepEqual(parseDomainXml(mapped), parseDomainXml(xml));
  }
});

test('mapDiskSources moves a file disk to a new file and drops its stale backing chain', () => {
  const xml = mapDiskSources(WEB1_INACTIVE_XML, [{ from: '/var/lib/libvirt/images/web1.qcow2', to: '/srv/vms/web1.qcow2', kind: 'file' }]);
  const [top, ...others] = parseDomainXml(xml).disks;
  assert.equal(top!.type, 'file');
  assert.equal(top!.path, '/srv/vms/web1.qcow2');
  assert.equal(top!.format, 'qcow2');
  assert.equal(top!.cache, 'none', 'the driver stays as it was');
  assert.deepEqual(top!.backingChain, []);
  assert.doesNotMatch(xml, /base\.qcow2/);
  assert.deepEqual(others, parseDomainXml(WEB1_INACTIVE_XML).disks.slice(1), 'the other disks are untouched');
  assert.match(xml, /<address type="pci" domain="0x0000" bus="0x00" slot="0x06" function="0x0"\/>/, 'the disk keeps its guest address');
});

test('mapDiskSources turns a qcow2 file disk moved onto an LV into a raw block disk', () => {
  const xml = mapDiskSources(WEB1_INACTIVE_XML, [{ from: '/var/lib/libvirt/images/web1.qcow2', to: '/dev/vg1/web1', kind: 'block', format: 'raw' }]);
  const top = parseDomainXml(xml).disks[0]!;
  assert.deepEqual([top.type, top.path, top.format, top.target], ['block', '/dev/vg1/web1', 'raw', 'vda']);
  assert.match(xml, /<disk type="block" device="disk">\s*<driver name="qemu" type="raw" cache="none" io="native" discard="unmap"\/>\s*<source dev="\/dev\/vg1\/web1"\/>\s*<target dev="vda"/);
});

test('mapDiskSources moves a block disk to a file and a pool volume to a block device', () => {
  const xml = mapDiskSources(WEB1_INACTIVE_XML, [
    { from: '/dev/vg0/web1-data', to: '/srv/vms/web1-data.img', kind: 'file' },
    { from: { pool: 'vmpool', volume: 'data.qcow2' }, to: '/dev/vg1/web1-vdc', kind: 'block', format: 'raw' },
  ]);
  const disks = parseDomainXml(xml).disks;
  assert.deepEqual([disks[1]!.type, disks[1]!.path, disks[1]!.shareable], ['file', '/srv/vms/web1-data.img', true]);
  assert.deepEqual([disks[2]!.type, disks[2]!.path, disks[2]!.pool, disks[2]!.format], ['block', '/dev/vg1/web1-vdc', undefined, 'raw']);
});

test('mapDiskSources keeps what a source carries besides its path', () => {
  const xml = WEB1_INACTIVE_XML.replace(
    "<source file='/var/lib/libvirt/images/debian-12.iso'/>",
    "<source file='/var/lib/libvirt/images/debian-12.iso' startupPolicy='optional'>\n        <seclabel model='dac' relabel='no'/>\n      </source>",
  );
  const mapped = mapDiskSources(xml, [{ from: '/var/lib/libvirt/images/debian-12.iso', to: '/srv/iso/debian-12.iso', kind: 'file' }]);
  assert.match(mapped, /<source file="\/srv\/iso\/debian-12.iso" startupPolicy="optional">\s*<seclabel model="dac" relabel="no"\/>\s*<\/source>/);
});

test('mapDiskSources refuses a move from a path no disk has, naming the disks there are', () => {
  assert.throws(
    () => mapDiskSources(WEB1_INACTIVE_XML, [{ from: '/var/lib/libvirt/images/web2.qcow2', to: '/srv/x.qcow2', kind: 'file' }]),
    (e: unknown) =>
      e instanceof FerryError &&
      e.code === 'NOT_FOUND' &&
      e.message === 'Cannot move disk "/var/lib/libvirt/images/web2.qcow2": the domain has no disk with that source' &&
      e.hint === 'its disks: /var/lib/libvirt/images/web1.qcow2, /dev/vg0/web1-data, vmpool/data.qcow2, /var/lib/libvirt/images/debian-12.iso',
  );
});

test('definableDomainXml drops what belongs to the running instance and keeps the rest', () => {
  const xml = definableDomainXml(MINI_LIVE_XML);
  assert.doesNotMatch(xml, /<domain[^>]* id=/);
  assert.doesNotMatch(xml, /<alias /);
  assert.doesNotMatch(xml, /<(source|backingStore)[^>]* index=/, 'controller indexes are not live state, node indexes are');
  assert.doesNotMatch(xml, /backingStore/);
  assert.doesNotMatch(xml, /<label>|<imagelabel>/);
  assert.match(xml, /<seclabel type="dynamic" model="dac" relabel="yes"\/>|<seclabel type="dynamic" model="dac" relabel="yes">\s*<\/seclabel>/);
  const before = parseDomainXml(MINI_LIVE_XML);
  const after = parseDomainXml(xml);
  assert.deepEqual({ ...after, id: 2, disks: after.disks.map((d, i) => ({ ...d, backingChain: before.disks[i]!.backingChain })) }, before);
  assert.doesNotMatch(xml, /\n\s*\n/, 'no blank lines where elements were');
});

test('definableDomainXml keeps user aliases and, when asked, backing chains without their indexes', () => {
  const xml = definableDomainXml(MINI_LIVE_XML.replace("<alias name='net0'/>", "<alias name='ua-net0'/>"), { keepBackingChains: true });
  assert.match(xml, /<alias name="ua-net0"\/>/);
  assert.doesNotMatch(xml, /<(source|backingStore)[^>]* index=/, 'controller indexes are not live state, node indexes are');
  assert.deepEqual(parseDomainXml(xml).disks[0]!.backingChain, [{ type: 'file', format: 'qcow2', path: '/var/lib/libvirt/images/base.qcow2' }]);
});

test('domainCpuXml gives the <cpu> element alone, or nothing when the domain has none', () => {
  assert.equal(
    domainCpuXml(WEB1_INACTIVE_XML),
    '<cpu mode="custom" match="exact" check="partial">\n    <model fallback="forbid">Haswell-noTSX</model>\n    <feature policy="require" name="vmx"/>\n    <feature policy="disable" name="hle"/>\n    <feature policy="optional" name="avx512f"/>\n  </cpu>',
  );
  assert.equal(domainCpuXml("<domain type='qemu'><name>x</name></domain>"), undefined);
});

test('diskMoves makes a disk moved into a target LV a block disk', () => {
  const disk = { device: 'vda', path: '/dev/vga/root', format: 'raw', virtualSize: 1 << 20, backingChain: [], cache: { writeback: false, direct: true, noFlush: false }, readOnly: false };
  assert.deepEqual(diskMoves([{ disk, index: 0, targetPath: '/dev/vgb/root', targetFormat: 'raw', create: true, sync: 'full', targetLv: { vg: 'vgb', lv: 'root', sizeBytes: 1 << 20 } }]), [
    { from: '/dev/vga/root', to: '/dev/vgb/root', kind: 'block', format: 'raw' },
  ]);
});

test('diskMoves finds a pool volume by its pool and volume; mapped to a path, it becomes a file disk there', () => {
  const disk = {
    device: 'vdc',
    path: '/var/lib/libvirt/images/pool/data.qcow2',
    format: 'qcow2',
    virtualSize: 1 << 20,
    backingChain: [],
    cache: { writeback: false, direct: true, noFlush: false },
    readOnly: false,
    kind: 'volume' as const,
    volume: { pool: 'vmpool', name: 'data.qcow2' },
  };
  const moves = diskMoves([{ disk, index: 0, targetPath: '/srv/vm/data.qcow2', targetFormat: 'qcow2', create: true, sync: 'top' }]);
  assert.deepEqual(moves, [{ from: { pool: 'vmpool', volume: 'data.qcow2' }, to: '/srv/vm/data.qcow2', kind: 'file', format: 'qcow2' }]);
  const moved = parseDomainXml(mapDiskSources(WEB1_INACTIVE_XML, moves)).disks.find((d) => d.target === 'vdc')!;
  assert.equal(moved.type, 'file');
  assert.equal(moved.path, '/srv/vm/data.qcow2');
  assert.equal(moved.pool, undefined);
  // One that stays a volume in its pool is no move: the domain names it as before.
  assert.deepEqual(diskMoves([{ disk, index: 0, targetPath: disk.path, targetFormat: 'qcow2', create: true, sync: 'top' }]), []);
});
