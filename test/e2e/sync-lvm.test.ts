/**
 * ferry sync into LVM logical volumes on a loop device: `--create-lv VG`
 * creates the missing LV with the source's size, a re-sync sends only what
 * changed. Needs a kernel with device-mapper to activate LVs; where it has
 * none, sync-errors.test.ts checks the clear refusal instead, and this file
 * reports its test as skipped with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deviceMapperAvailable } from '../../src/storage/lvm.js';
import { ferry, makeImage, makeLab, MiB, overwriteBlocks, sh, type Lab } from './sync-helpers.js';

const noDm = !deviceMapperAvailable() && 'this kernel has no device-mapper (not in /proc/misc): LVM cannot activate volumes';

let lab: Lab;
let loop = '';
const vg = `vgferry${process.pid}`;
before(async () => {
  lab = await makeLab('sync-lvm');
  if (noDm) return;
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

test('sync --create-lv makes the LV on a loop device and a re-sync sends only the changed blocks', { skip: noDm }, async () => {
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
  assert.equal((await sh('cmp', ['-n', String(40 * MiB), src, lv])).code, 0);

  await overwriteBlocks(src, [2, 30]);
  const again = await ferry(['sync', '--json', `ha:${src}`, `hb:${lv}`], lab.env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.blocks_changed, 2);
  assert.equal(again.json.bytes_written, 2 * MiB);
  assert.equal(again.json.blocks_cached, 0, 'a block device keeps no digest record');
  assert.equal((await sh('cmp', ['-n', String(40 * MiB), src, lv])).code, 0);
});
