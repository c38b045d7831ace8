import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmDisk } from '../drivers/driver.js';
import { chooseLvTarget, type LvFacts } from './lv-targets.js';

const MiB = 2 ** 20;
const disk: VmDisk = { device: 'drive0', path: '/dev/vga/root', format: 'raw', virtualSize: 16 * MiB, backingChain: [], cache: { writeback: false, direct: true, noFlush: false }, readOnly: false };

function facts(over: Partial<LvFacts>): LvFacts {
  return {
    disk,
    sourceLv: { vg: 'vga', lv: 'root', sizeBytes: 16 * MiB },
    targetHost: 'hb',
    targetVgFree: 64 * MiB,
    targetVgs: ['vga', 'vgb'],
    targetLvExists: false,
    targetPathExists: false,
    resumable: false,
    ...over,
  };
}

const refusal = (code: string, message: RegExp, hint: RegExp) => (e: Error & { code?: string; hint?: string }) => {
  assert.equal(e.code, code);
  assert.match(e.message, message);
  assert.match(e.hint ?? '', hint);
  return true;
};

test('an LV gets a new LV in the VG --create-lv names, else in the VG of the same name', () => {
  assert.deepEqual(chooseLvTarget(facts({ createLv: 'vgb' })), { kind: 'create', vg: 'vgb', lv: 'root', sizeBytes: 16 * MiB });
  assert.deepEqual(chooseLvTarget(facts({})), { kind: 'create', vg: 'vga', lv: 'root', sizeBytes: 16 * MiB });
});

test('a disk the source LVM does not know as an LV is left to the other rules', () => {
  assert.deepEqual(chooseLvTarget(facts({ sourceLv: undefined, createLv: 'vgb' })), { kind: 'none' });
});

test('--create-lv naming a VG the target lacks is refused, naming its VGs and --disk-map', () => {
  assert.throws(
    () => chooseLvTarget(facts({ createLv: 'nope', targetVgFree: undefined })),
    refusal('NOT_FOUND', /--create-lv nope: host "hb" has no volume group "nope"/, /vga, vgb.*--disk-map \/dev\/vga\/root=DST/),
  );
});

test('without the flag and without the VG, an existing device is written into as before, and a missing one is refused naming both flags', () => {
  assert.deepEqual(chooseLvTarget(facts({ targetVgFree: undefined, targetPathExists: true })), { kind: 'none' });
  assert.throws(
    () => chooseLvTarget(facts({ targetVgFree: undefined, targetVgs: [] })),
    refusal('NOT_FOUND', /is a logical volume and host "hb" has no volume group "vga"/, /--create-lv VG.*no volume group.*--disk-map/),
  );
});

test('an LV already on the target is continued into when an interrupted move made it, written into when active, else refused', () => {
  assert.equal(chooseLvTarget(facts({ targetLvExists: true, targetPathExists: true, resumable: true })).kind, 'resume');
  assert.deepEqual(chooseLvTarget(facts({ targetLvExists: true, targetPathExists: true })), { kind: 'none' });
  assert.throws(() => chooseLvTarget(facts({ targetLvExists: true })), refusal('TARGET_EXISTS', /"vga\/root" already exists on "hb"/, /lvremove vga\/root/));
});

test('a VG without room for the LV is refused before anything is made', () => {
  assert.throws(() => chooseLvTarget(facts({ targetVgFree: 8 * MiB })), refusal('NO_SPACE', /8\.0 MiB free; disk "\/dev\/vga\/root" needs 16\.0 MiB/, /--create-lv VG/));
});

test('the new LV is as large as the source LV, or the disk if that is larger', () => {
  const c = chooseLvTarget(facts({ sourceLv: { vg: 'vga', lv: 'root', sizeBytes: 20 * MiB } }));
  assert.equal(c.kind === 'create' && c.sizeBytes, 20 * MiB);
});
