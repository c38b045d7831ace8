import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal, journalStep, readHistory } from './journal.js';

process.env.FERRY_STATE_DIR = mkdtempSync(join(tmpdir(), 'ferry-journal-'));

test('a migration without an end record is interrupted, and history names the command that settles it', () => {
  const open = new Journal('migrate', 'web01');
  open.record('start', { vm: 'web01', from: 'a', to: 'b' });
  const closed = new Journal('migrate', 'db01', `${open.id}-closed`);
  closed.record('start', { vm: 'db01', from: 'a', to: 'b' });
  closed.record('end', { status: 'completed', downtime_ms: 12 });
  const history = readHistory();
  const interrupted = history.find((h) => h.id === open.id);
  assert.equal(interrupted?.status, 'interrupted');
  assert.equal(interrupted?.settleWith, `ferry recover ${open.id}`);
  const done = history.find((h) => h.id === closed.id);
  assert.equal(done?.status, 'completed');
  assert.equal(done?.settleWith, undefined);
  assert.equal(done?.downtimeMs, 12);
});

test('history names the kind of move once the journal records it, migrate before', () => {
  const cold = new Journal('migrate', 'files01');
  cold.record('start', { kind: 'migrate', vm: 'files01', from: 'a', to: 'b' });
  const early = readHistory().find((h) => h.id === cold.id);
  assert.equal(early?.kind, 'migrate');
  cold.record('mode', { mode: 'cold', state: 'shut off' });
  assert.equal(readHistory().find((h) => h.id === cold.id)?.kind, 'cold');
});

test('a reopened journal appends to the same file', () => {
  const first = new Journal('migrate', 'app');
  first.record('start', { vm: 'app' });
  Journal.reopen(first.id).record('end', { status: 'recovered', runs_on: 'b' });
  assert.deepEqual(
    first.entries().map((e) => e.step),
    ['start', 'end'],
  );
  assert.equal(readHistory().find((h) => h.id === first.id)?.runsOn, 'b');
});

test('journalStep names a phase start by its phase, other lines by their step', () => {
  assert.equal(journalStep({ time: '', step: 'phase', phase: 'mirror' }), 'phase:mirror');
  assert.equal(journalStep({ time: '', step: 'committed' }), 'committed');
});
