import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLv, mapInactiveLv, parseLvPath } from './lvm.js';

test('parseLvPath recognises /dev/VG/LV and /dev/mapper names', () => {
  assert.deepEqual(parseLvPath('/dev/vg0/disk1'), { vg: 'vg0', lv: 'disk1' });
  assert.deepEqual(parseLvPath('/dev/mapper/my--vg-root--lv'), { vg: 'my-vg', lv: 'root-lv' });
  assert.equal(parseLvPath('/dev/sda'), undefined);
  assert.equal(parseLvPath('/dev/disk/by-id'), undefined);
  assert.equal(parseLvPath('/var/tmp/x.img'), undefined);
});

test('createLv and mapInactiveLv name a volume group or LV that does not exist', async () => {
  await assert.rejects(createLv(`vgferrynone${process.pid}`, 'lv0', 1 << 20), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, 'NOT_FOUND');
    assert.match(e.message, /volume group "vgferrynone\d+" not found/);
    assert.match(e.hint ?? '', /vgs/);
    return true;
  });
  await assert.rejects(mapInactiveLv(`vgferrynone${process.pid}`, 'lv0'), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
});
