import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listRecords, loadRecord, recordDir, recordToTakeOver, removeRecord, saveRecord, type TargetRecord } from './migration-record.js';

process.env.FERRY_MIGRATION_DIR = mkdtempSync(join(tmpdir(), 'ferry-records-'));

const target = (over: Partial<TargetRecord> = {}): TargetRecord => ({ id: 'm1', role: 'target', vm: 'web01', guardPid: process.pid, phase: 'incoming', files: ['/x'], token: 't', ...over });

test('a record saved is loaded by its id and role, listed, and gone once removed', () => {
  saveRecord(target());
  assert.equal(loadRecord('m1', 'target')?.phase, 'incoming');
  assert.equal(loadRecord('m1', 'source'), undefined, 'the other side of the migration has no record here');
  assert.deepEqual(
    listRecords().map((r) => `${r.id}.${r.role}`),
    ['m1.target'],
  );
  removeRecord('m1', 'target');
  assert.equal(loadRecord('m1', 'target'), undefined);
});

test('a file that is not a record is not taken for one', () => {
  writeFileSync(join(recordDir(), 'junk.target.json'), '{"id": 3}');
  writeFileSync(join(recordDir(), 'half.target.json'), '{"id": "half", "ro');
  assert.equal(loadRecord('junk', 'target'), undefined);
  assert.equal(loadRecord('half', 'target'), undefined);
  assert.deepEqual(listRecords(), []);
});

test('a record watched by another live agent is taken over only once that agent has let go', async () => {
  const other = spawn('sleep', ['30']);
  try {
    saveRecord(target({ id: 'm2', guardPid: other.pid! }));
    let taken = false;
    const takeover = recordToTakeOver('m2', 'target').then((r) => {
      taken = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(taken, false, 'waits while the other agent still watches');
    saveRecord(target({ id: 'm2', guardPid: other.pid!, settled: true, phase: 'committed' }));
    assert.equal((await takeover)?.phase, 'committed');
  } finally {
    other.kill();
  }
});

test('a record whose agent is gone is taken over at once', async () => {
  saveRecord(target({ id: 'm3', guardPid: 999_999 }));
  assert.equal((await recordToTakeOver('m3', 'target'))?.id, 'm3');
});
