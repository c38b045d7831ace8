import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { FerryError, isSystemError, messageOf } from './errors.js';

test('isSystemError knows a system call error and its code, and nothing else', () => {
  let missing: unknown;
  try {
    readFileSync('/no/such/ferry/file');
  } catch (e) {
    missing = e;
  }
  assert.ok(isSystemError(missing));
  assert.ok(isSystemError(missing, 'ENOENT'));
  assert.ok(!isSystemError(missing, 'EINVAL'));
  assert.ok(!isSystemError(new Error('ENOENT')));
  assert.ok(!isSystemError(new FerryError('NOT_FOUND', 'gone')), 'a FerryError code is not a system error code');
  assert.ok(!isSystemError({ code: 'ENOENT', message: 'a plain object' }));
  assert.ok(!isSystemError(undefined));
});

test('messageOf gives an Error its message and anything else its text', () => {
  assert.equal(messageOf(new Error('disk gone')), 'disk gone');
  assert.equal(messageOf('a string thrown'), 'a string thrown');
  assert.equal(messageOf(42), '42');
});
