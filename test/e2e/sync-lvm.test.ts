/**
 * ferry sync into LVM logical volumes on a loop device: `--create-lv VG`
 * creates the missing LV with the source's size, a re-sync sends only what
 * changed. On a kernel without device-mapper (this machine's) the LV cannot
 * be activated; ferry then writes its metadata only and reaches its extents
 * through a loop device, and the test reads them back the same way.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { ferry, makeImage, makeLab, MiB, overwriteBlocks, sh, type Lab } from './sync-helpers.js';

// The LVM tools warn on stderr about descriptors node leaves open to them.
process.env.LVM_SUPPRESS_FD_WARNINGS = '1';

let lab: Lab;
let loop = '';
const vg = `vgferry${process.pid}`;
before(async () => {
  lab = await makeLab('sync-lvm');
  assert.equal((await sh('truncate', ['-s', '96M', `${lab.dir}/pv.img`])).code, 0);
  const l = await sh('losetup', ['--find', '--show', `${lab.dir}/pv.img`]);
  assert.equal(l.code, 0, l.out);
  loop = l.out.trim();
  assert.equal((await sh('pvcreate', ['-q', loop])).code, 0);
  assert.equal((await sh('vgcreate', ['-q', vg, loop])).code, 0);
});
after(async () => {
  if (loop) {
    await sh('vgremove', ['-q', '-f', vg]);
    await sh('pvremove', ['-q', loop]);
    await sh('losetup', ['-d', loop]);
  }
  await lab.cleanup();
});

/** The first `length` bytes of the LV: from its device node, or (no device-mapper) from its extents on the PV. */
async function lvBytes(lv: string, length: number): Promise<Buffer> {
  let path = `/dev/${vg}/${lv}`;
  let offset = 0;
  if (!existsSync(path)) {
    const peStart = Number((await sh('pvs', ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'pe_start', loop])).out.trim());
    const [ranges, extent] = (await sh('lvs', ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'seg_pe_ranges,vg_extent_size', `${vg}/${lv}`])).out.trim().split(/\s+/);
    const first = Number(/:(\d+)-\d+$/.exec(ranges!)![1]);
    path = loop;
    offset = peStart + first * Number(extent);
  }
  const fh = await fs.open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

test('sync --create-lv makes the LV on a loop device and a re-sync sends only the changed blocks', async () => {
  const src = `${lab.dir}/src.img`;
  const lv = `/dev/${vg}/copy`;
  await makeImage(src, 40, [
    [0, 6],
    [20, 4],
  ]);
  const r = await ferry(['sync', '--json', '--create-lv', vg, `ha:${src}`, `hb:${lv}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.created, true);
  assert.equal(r.json.verified, true);
  assert.equal(r.json.blocks_changed, 10);
  const size = Number((await sh('lvs', ['--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${vg}/copy`])).out.trim());
  assert.ok(size >= 40 * MiB && size < 48 * MiB, `LV of ${size} bytes`);
  assert.ok((await lvBytes('copy', 40 * MiB)).equals(await fs.readFile(src)), 'the LV holds the source');

  await overwriteBlocks(src, [2, 30]);
  const again = await ferry(['sync', '--json', `ha:${src}`, `hb:${lv}`], lab.env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.created, false);
  assert.equal(again.json.blocks_changed, 2);
  assert.equal(again.json.bytes_written, 2 * MiB);
  assert.equal(again.json.blocks_cached, 0, 'a block device keeps no digest record');
  assert.ok((await lvBytes('copy', 40 * MiB)).equals(await fs.readFile(src)), 'the LV holds the changed source');
  // Nothing left attached: only the PV's own loop device is backed by the PV image.
  assert.equal((await sh('losetup', ['-j', `${lab.dir}/pv.img`])).out.trim().split('\n').length, 1);
});
