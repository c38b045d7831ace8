import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLv, deviceMapperAvailable, parseLvPath } from './lvm.js';

test('parseLvPath recognises /dev/VG/LV and /dev/mapper names', () => {
  assert.deepEqual(parseLvPath('/dev/vg0/disk1'), { vg: 'vg0', lv: 'disk1' });
  assert.deepEqual(parseLvPath('/dev/mapper/my--vg-root--lv'), { vg: 'my-vg', lv: 'root-lv' });
  assert.equal(parseLvPath('/dev/sda'), undefined);
  assert.equal(parseLvPath('/dev/disk/by-id'), undefined);
  assert.equal(parseLvPath('/var/tmp/x.img'), undefined);
});

test('createLv refuses clearly when the kernel has no device-mapper', { skip: deviceMapperAvailable() }, async () => {
  await assert.rejects(createLv('vg0', 'lv0', 1 << 20), (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, 'INCOMPATIBLE');
    assert.match(e.message, /device-mapper/);
    assert.match(e.hint ?? '', /dm_mod/);
    return true;
  });
});
