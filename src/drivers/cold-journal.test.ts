import assert from 'node:assert/strict';
import { test } from 'node:test';
import { coldProgress } from './cold-journal.js';

test("a cold move's journal tells what was done: powered off, made, started", () => {
  const vm = { step: 'vm', argv: ['qemu-system-x86_64', '-name', 'guest=web1'] };
  assert.deepEqual(coldProgress([{ step: 'start' }, { step: 'mode', mode: 'cold' }, vm, { step: 'source-forced-off' }, { step: 'created' }]), {
    cold: true,
    stoppedSource: true,
    madeOnTarget: false,
    startedOnTarget: false,
    sourceArgv: ['qemu-system-x86_64', '-name', 'guest=web1'],
  });
  const done = coldProgress([{ step: 'mode', mode: 'cold' }, { step: 'target-defined' }, { step: 'target-started' }]);
  assert.equal(done.madeOnTarget && done.startedOnTarget, true);
  assert.equal(coldProgress([{ step: 'mode', mode: 'live' }]).cold, false);
});
