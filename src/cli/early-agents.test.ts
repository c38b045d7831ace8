import assert from 'node:assert/strict';
import { test } from 'node:test';
import { optionValue } from './early-agents.js';

test('an option is read in both spellings, and not past "--"', () => {
  assert.equal(optionValue(['vm1', '--from', 'a', '--to=b'], '--from'), 'a');
  assert.equal(optionValue(['vm1', '--from', 'a', '--to=b'], '--to'), 'b');
  assert.equal(optionValue(['vm1', '--', '--to', 'b'], '--to'), undefined);
  assert.equal(optionValue(['vm1'], '--hosts'), undefined);
});
