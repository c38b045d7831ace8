import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostPidOf } from './namespace-pid.js';

test('a process outside any child PID namespace has the same PID on both sides', async () => {
  assert.equal(await hostPidOf(process.pid, process.pid), process.pid);
});

test('an unknown PID of a namespace is an error that says what to do', async () => {
  await assert.rejects(hostPidOf(process.pid, 2 ** 30), (e: Error & { code?: string; hint?: string }) => e.code === 'LAB' && /lab down/.test(e.hint ?? ''));
});
