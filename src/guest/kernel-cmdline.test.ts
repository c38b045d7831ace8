import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editParams, paramValue, paramValues, setParam } from './kernel-cmdline.js';

test('reads root=, resume= and every console=', () => {
  const c = 'ro root=/dev/xvda1 console=tty0 console=hvc0 resume=/dev/xvda2 quiet';
  assert.equal(paramValue(c, 'root'), '/dev/xvda1');
  assert.deepEqual(paramValues(c, 'console'), ['tty0', 'hvc0']);
  assert.equal(paramValue(c, 'rootflags'), undefined);
});

test('edits keep order and spacing', () => {
  const c = 'ro  root=/dev/xvda1 console=hvc0 quiet';
  assert.equal(
    editParams(c, (p) => (p === 'console=hvc0' ? 'console=ttyS0,115200' : undefined)),
    'ro  root=/dev/xvda1 console=ttyS0,115200 quiet',
  );
  assert.equal(
    editParams(c, (p) => (p === 'quiet' ? null : undefined)),
    'ro  root=/dev/xvda1 console=hvc0',
  );
  assert.equal(
    editParams('quiet ro', (p) => (p === 'quiet' ? null : undefined)),
    'ro',
  );
  assert.equal(
    editParams('root=/dev/xvda1 ro  console=hvc0 ', (p) => (p === 'ro' ? 'rw' : undefined)),
    'root=/dev/xvda1 rw  console=hvc0 ',
  );
});

test('setParam replaces the last occurrence or appends', () => {
  assert.equal(setParam('ro root=/dev/xvda1', 'root', 'UUID=abc'), 'ro root=UUID=abc');
  assert.equal(setParam('ro', 'net.ifnames', '0'), 'ro net.ifnames=0');
  assert.equal(setParam('', 'console', 'ttyS0'), 'console=ttyS0');
  assert.equal(setParam('console=a console=b quiet', 'console', 'c'), 'console=c quiet');
});
