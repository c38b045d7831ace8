import assert from 'node:assert/strict';
import { test } from 'node:test';
import { text } from './text.js';

test('text gives strings as they are, numbers as digits, objects as JSON, nothing as empty', () => {
  assert.equal(text('disk full'), 'disk full');
  assert.equal(text(42), '42');
  assert.equal(text({ class: 'GenericError' }), '{"class":"GenericError"}');
  assert.equal(text(undefined), '');
  assert.equal(text(null), '');
});
