import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { Journal } from './journal.js';
import { runPhases, type Phase } from './phases.js';

process.env.FERRY_STATE_DIR = mkdtempSync(join(tmpdir(), 'ferry-phases-'));

function tracked(names: string[], failAt?: string, rollbackFails?: string): { phases: Phase[]; calls: string[] } {
  const calls: string[] = [];
  const phases = names.map((name) => ({
    name,
    run: async () => {
      calls.push(`run ${name}`);
      if (name === failAt) throw new FerryError('MIGRATION_FAILED', `${name} broke`);
    },
    rollback: async () => {
      calls.push(`rollback ${name}`);
      if (name === rollbackFails) throw new Error(`rollback of ${name} broke`);
    },
  }));
  return { phases, calls };
}

test('runPhases runs every phase in order and rolls nothing back when all succeed', async () => {
  const { phases, calls } = tracked(['check', 'prepare', 'copy']);
  const journal = new Journal('test', 'ok');
  const result = await runPhases(phases, journal);
  assert.deepEqual(calls, ['run check', 'run prepare', 'run copy']);
  assert.equal(result.error, undefined);
  assert.deepEqual(Object.keys(result.times), ['check', 'prepare', 'copy']);
  assert.deepEqual(
    journal.entries().map((e) => e.step),
    ['phase', 'phase-done', 'phase', 'phase-done', 'phase', 'phase-done'],
  );
});

test('runPhases stops at the failing phase and rolls back it and those before, in reverse', async () => {
  const { phases, calls } = tracked(['check', 'prepare', 'copy', 'finish'], 'copy');
  const result = await runPhases(phases, new Journal('test', 'fail'));
  assert.deepEqual(calls, ['run check', 'run prepare', 'run copy', 'rollback copy', 'rollback prepare', 'rollback check']);
  assert.equal(result.failedPhase, 'copy');
  assert.equal(result.error?.code, 'MIGRATION_FAILED');
  assert.equal(result.error?.message, 'copy broke');
});

test('a rollback that fails does not stop the others, and is reported and journaled', async () => {
  const { phases, calls } = tracked(['check', 'prepare', 'copy'], 'copy', 'prepare');
  const journal = new Journal('test', 'rollback');
  const result = await runPhases(phases, journal);
  assert.deepEqual(calls.slice(-3), ['rollback copy', 'rollback prepare', 'rollback check']);
  assert.equal(result.rollbackErrors.length, 1);
  assert.match(result.rollbackErrors[0]!.message, /rollback of prepare broke/);
  assert.ok(journal.entries().some((e) => e.step === 'rollback-failed' && e.phase === 'prepare'));
});

test('phases without a rollback are skipped when rolling back', async () => {
  const calls: string[] = [];
  const phases: Phase[] = [
    { name: 'a', run: async () => void calls.push('run a'), rollback: async () => void calls.push('rollback a') },
    { name: 'b', run: async () => void calls.push('run b') },
    { name: 'c', run: async () => Promise.reject(new Error('c broke')) },
  ];
  const result = await runPhases(phases, new Journal('test', 'skip'));
  assert.deepEqual(calls, ['run a', 'run b', 'rollback a']);
  assert.equal(result.failedPhase, 'c');
});
