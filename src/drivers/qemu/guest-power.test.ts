import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resumeAfterMigration, type Monitor } from './guest-power.js';

/** A monitor that reports `states` one query at a time (the last one from then on) and records every command. */
function monitor(states: string[]): Monitor & { commands: string[] } {
  const commands: string[] = [];
  let i = 0;
  return {
    commands,
    execute<T>(command: string): Promise<T> {
      commands.push(command);
      if (command === 'query-status') return Promise.resolve({ status: states[Math.min(i++, states.length - 1)] } as T);
      return Promise.resolve(undefined as T);
    },
  };
}

test('resumeAfterMigration waits out finish-migrate without cont, for QEMU restarts the guest itself from there', async () => {
  const qmp = monitor(['finish-migrate', 'finish-migrate', 'running']);
  assert.equal(await resumeAfterMigration(qmp, 10, 1), 'running');
  assert.deepEqual(qmp.commands, ['query-status', 'query-status', 'query-status']);
});

test('resumeAfterMigration resumes a guest left paused or postmigrate, once', async () => {
  for (const left of ['paused', 'postmigrate']) {
    const qmp = monitor([left, 'running']);
    assert.equal(await resumeAfterMigration(qmp, 10, 1), 'running');
    assert.deepEqual(qmp.commands, ['query-status', 'cont', 'query-status']);
  }
});

test('resumeAfterMigration gives up after its tries and names the state the guest is stuck in', async () => {
  const qmp = monitor(['finish-migrate']);
  assert.equal(await resumeAfterMigration(qmp, 3, 1), 'finish-migrate');
  assert.equal(qmp.commands.filter((c) => c === 'cont').length, 0);
});
