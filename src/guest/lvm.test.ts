import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyDeviceName } from './device-names.js';
import type { Filesystem } from './image.js';
import { lvForDevicePath, lvmConfig, mapperName, parseLvmReports, parsePeRanges, placeLogicalVolume, type VolumeGroup } from '../storage/lvm-layout.js';
import { resolveFstabDevice } from './mount.js';

// As `vgs|pvs|lvs --reportformat json --units b --nosuffix` print them (LVM 2.03.16), for a VG whose
// root LV is one run, var has two segments (extended after swap was made) and data is striped over two PVs.
const VGS = `{"report": [{"vg": [
  {"vg_name":"vg0", "vg_uuid":"6GCQBT-fFNI-7rgE-S10S-6pSt-wi6k-WKv03T", "vg_size":"398458880", "vg_free":"37748736", "vg_extent_size":"4194304", "vg_missing_pv_count":"0"}]}]}`;
const PVS = `{"report": [{"pv": [
  {"pv_name":"/dev/loop7", "pv_uuid":"xqFgil-OWqj-luFC-pnnK-niye-foJ0-Pkt2tW", "pe_start":"1048576", "pv_size":"197132288", "vg_name":"vg0"},
  {"pv_name":"/dev/loop8", "pv_uuid":"Zq2Fil-OWqj-luFC-pnnK-niye-foJ0-Pkt2tW", "pe_start":"1048576", "pv_size":"201326592", "vg_name":"vg0"},
  {"pv_name":"/dev/loop9", "pv_uuid":"", "pe_start":"0", "pv_size":"1000", "vg_name":""}]}]}`;
const LVS = `{"report": [{"lv": [
  {"vg_name":"vg0", "lv_name":"root", "lv_uuid":"vbx2VY-ezH5-zSAA-vUPd-0cwP-YyMc-fDS9CQ", "lv_size":"125829120", "lv_attr":"-wi-XX----", "segtype":"linear", "seg_start_pe":"0", "seg_size_pe":"30", "seg_pe_ranges":"/dev/loop7:0-29"},
  {"vg_name":"vg0", "lv_name":"var", "lv_uuid":"Oc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"33554432", "lv_attr":"-wi-XX----", "segtype":"linear", "seg_start_pe":"2", "seg_size_pe":"6", "seg_pe_ranges":"/dev/loop7:40-45"},
  {"vg_name":"vg0", "lv_name":"swap", "lv_uuid":"Pc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"33554432", "lv_attr":"-wi-XX----", "segtype":"striped", "seg_start_pe":"0", "seg_size_pe":"8", "seg_pe_ranges":"/dev/loop8:2-9"},
  {"vg_name":"vg0", "lv_name":"var", "lv_uuid":"Oc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"33554432", "lv_attr":"-wi-XX----", "segtype":"linear", "seg_start_pe":"0", "seg_size_pe":"2", "seg_pe_ranges":"/dev/loop7:30-31"},
  {"vg_name":"vg0", "lv_name":"data", "lv_uuid":"Qc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"16777216", "lv_attr":"-wi-XX----", "segtype":"striped", "seg_start_pe":"0", "seg_size_pe":"4", "seg_pe_ranges":"/dev/loop7:46-47 /dev/loop8:0-1"},
  {"vg_name":"vg0", "lv_name":"thin", "lv_uuid":"Rc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"16777216", "lv_attr":"Vwi-XX-tz-", "segtype":"thin", "seg_start_pe":"0", "seg_size_pe":"4", "seg_pe_ranges":""},
  {"vg_name":"vg0", "lv_name":"far", "lv_uuid":"Sc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3", "lv_size":"4194304", "lv_attr":"-wi-XX-p--", "segtype":"linear", "seg_start_pe":"0", "seg_size_pe":"1", "seg_pe_ranges":"[unknown]:0-0"}]}]}`;

function vg0(): VolumeGroup {
  const vgs = parseLvmReports(VGS, PVS, LVS);
  assert.equal(vgs.length, 1);
  return vgs[0]!;
}

test('LVM reports become volume groups with their PVs and LVs, segments in LV order', () => {
  const vg = vg0();
  assert.equal(vg.name, 'vg0');
  assert.equal(vg.extentSize, 4194304);
  assert.deepEqual(
    vg.pvs.map((p) => [p.device, p.peStart]),
    [
      ['/dev/loop7', 1048576],
      ['/dev/loop8', 1048576],
    ],
  );
  assert.deepEqual(
    vg.lvs.map((l) => l.name),
    ['root', 'var', 'swap', 'data', 'thin', 'far'],
  );
  const v = vg.lvs.find((l) => l.name === 'var')!;
  assert.deepEqual(
    v.segments.map((s) => [s.startExtent, s.ranges[0]!.first]),
    [
      [0, 30],
      [2, 40],
    ],
  );
  assert.equal(vg.lvs.find((l) => l.name === 'thin')!.segments[0]!.ranges.length, 0);
});

test('PE ranges are read for linear and striped segments, and nonsense is refused', () => {
  assert.deepEqual(parsePeRanges('/dev/loop3:0-29'), [{ device: '/dev/loop3', first: 0, last: 29 }]);
  assert.deepEqual(parsePeRanges(' /dev/loop3:0-1  [unknown]:4-5 '), [
    { device: '/dev/loop3', first: 0, last: 1 },
    { device: '[unknown]', first: 4, last: 5 },
  ]);
  assert.deepEqual(parsePeRanges(''), []);
  assert.throws(() => parsePeRanges('/dev/loop3'), /Cannot read the LVM extent range "\/dev\/loop3"/);
});

test('a one-run linear LV is placed at pe_start plus its first extent', () => {
  const vg = vg0();
  const root = placeLogicalVolume(
    vg,
    vg.lvs.find((l) => l.name === 'root')!,
  );
  assert.ok(root.ok);
  assert.equal(root.pv.device, '/dev/loop7');
  assert.equal(root.offset, 1048576);
  assert.equal(root.size, 30 * 4194304);
  const swap = placeLogicalVolume(
    vg,
    vg.lvs.find((l) => l.name === 'swap')!,
  );
  assert.ok(swap.ok, 'a striped segment with one stripe is linear');
  assert.equal(swap.pv.device, '/dev/loop8');
  assert.equal(swap.offset, 1048576 + 2 * 4194304);
  assert.equal(swap.size, 8 * 4194304);
});

test('LVs that need device-mapper are not placed, each with its reason', () => {
  const vg = vg0();
  const why = (name: string): string => {
    const p = placeLogicalVolume(
      vg,
      vg.lvs.find((l) => l.name === name)!,
    );
    assert.ok(!p.ok, name);
    return p.reason;
  };
  assert.match(why('var'), /2 segments, which only device-mapper can join/);
  assert.match(why('data'), /segment type is striped/);
  assert.match(why('thin'), /segment type is thin/);
  assert.match(why('far'), /physical volume that is not on this disk/);
});

test('an LV whose extents run past its PV is refused', () => {
  const vg = vg0();
  const root = vg.lvs.find((l) => l.name === 'root')!;
  const big = { ...root, segments: [{ ...root.segments[0]!, extents: 60, ranges: [{ device: '/dev/loop7', first: 0, last: 59 }] }] };
  const p = placeLogicalVolume(vg, big);
  assert.ok(!p.ok);
  assert.match(p.reason, /past the end/);
});

test('device-mapper names double the hyphens', () => {
  assert.equal(mapperName('vg0', 'root'), 'vg0-root');
  assert.equal(mapperName('my-vg', 'lv-home'), 'my--vg-lv--home');
});

test('LVM device paths in every spelling find the LV', () => {
  const lvs = [
    { vg: 'vg0', name: 'root', uuid: 'vbx2VY-ezH5-zSAA-vUPd-0cwP-YyMc-fDS9CQ', vgUuid: '6GCQBT-fFNI-7rgE-S10S-6pSt-wi6k-WKv03T' },
    { vg: 'my-vg', name: 'lv-home', uuid: 'Oc6jeu-LVUf-1V5U-XUtr-N6J5-lnSD-KhblX3', vgUuid: 'xqFgil-OWqj-luFC-pnnK-niye-foJ0-Pkt2tW' },
  ];
  assert.equal(lvForDevicePath('/dev/vg0/root', lvs)?.name, 'root');
  assert.equal(lvForDevicePath('/dev/mapper/vg0-root', lvs)?.name, 'root');
  assert.equal(lvForDevicePath('/dev/mapper/my--vg-lv--home', lvs)?.name, 'lv-home');
  assert.equal(lvForDevicePath('/dev/my-vg/lv-home', lvs)?.name, 'lv-home');
  assert.equal(lvForDevicePath('/dev/disk/by-id/dm-name-vg0-root', lvs)?.name, 'root');
  assert.equal(lvForDevicePath('/dev/disk/by-id/dm-uuid-LVM-6GCQBTfFNI7rgES10S6pStwi6kWKv03Tvbx2VYezH5zSAAvUPd0cwPYyMcfDS9CQ', lvs)?.name, 'root');
  assert.equal(lvForDevicePath('/dev/mapper/vg0-swap', lvs), undefined);
  assert.equal(lvForDevicePath('/dev/mapper/my-vg-lv-home', lvs), undefined, 'single hyphens are not how dm names my-vg/lv-home');
  assert.equal(lvForDevicePath('/dev/xvda1', lvs), undefined);
});

test('fstab names of LVs resolve to the LV filesystem, and partition names never to an LV', () => {
  const fs = (f: Partial<Filesystem>): Filesystem => ({ partition: 2, device: '/dev/loopX', offset: 0, size: 1, ...f });
  const boot = fs({ partition: 1, type: 'ext4', uuid: 'b' });
  const pv = fs({ partition: 2, type: 'LVM2_member' });
  const root = fs({ partition: 2, type: 'ext4', uuid: 'r', lv: { vg: 'vg0', name: 'root', uuid: 'U', vgUuid: 'V' } });
  const all = [boot, pv, root];
  const resolve = (spec: string): Filesystem | undefined => resolveFstabDevice({ spec, device: classifyDeviceName(spec) }, all);
  assert.equal(resolve('/dev/mapper/vg0-root'), root);
  assert.equal(resolve('/dev/vg0/root'), root);
  assert.equal(resolve('/dev/disk/by-id/dm-name-vg0-root'), root);
  assert.equal(resolve('UUID=r'), root);
  assert.equal(resolve('/dev/xvda1'), boot);
  assert.equal(resolve('/dev/xvda2'), pv);
  assert.equal(resolve('/dev/vg0/swap'), undefined);
});

test('dm-name and dm-uuid links survive the move', () => {
  assert.equal(classifyDeviceName('/dev/disk/by-id/dm-name-vg0-root').survives, true);
  assert.equal(classifyDeviceName('/dev/disk/by-id/dm-uuid-LVM-abc').kind, 'mapper');
  assert.equal(classifyDeviceName('/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001-part1').survives, false);
});

test('the LVM configuration accepts only the given devices and writes nothing on the host', () => {
  const c = lvmConfig(['/dev/loop3', '/dev/loop4']);
  assert.match(c, /filter=\["a\|\^\/dev\/loop3\$\|","a\|\^\/dev\/loop4\$\|","r\|\.\*\|"\]/);
  assert.match(c, /global_filter=/);
  assert.match(c, /use_devicesfile=0/);
  assert.match(c, /hints="none"/);
  assert.match(c, /backup=0 archive=0/);
  assert.match(lvmConfig([]), /filter=\["r\|\.\*\|"\]/);
});
