import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopback } from './net.js';

test('loopback: 127.0.0.0/8, ::1 (bracketed in a URL too) and localhost; nothing else', () => {
  for (const a of ['127.0.0.1', '127.0.0.3', '127.255.0.9', '::1', '[::1]', 'localhost', 'LOCALHOST']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '192.0.2.1', '1127.0.0.1', '::2', 'kvm2', 'localhost.example']) assert.equal(isLoopback(a), false, a);
});
