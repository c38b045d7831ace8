import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../util/exec.js';
import { GUEST_INIT, testGuestCacheDir } from './guest-image.js';

test('the guest init script is valid busybox shell', async () => {
  const r = await run('busybox', ['sh', '-n', '-c', GUEST_INIT], { allowFailure: true });
  assert.equal(r.exitCode, 0, r.stderr);
});

test('the guest init reports a record only after the dd that writes it with O_DIRECT and fsync', () => {
  const write = GUEST_INIT.indexOf('oflag=direct conv=fsync');
  const report = GUEST_INIT.indexOf('echo "FERRY-REC $n"');
  assert.ok(write > 0 && report > write, 'FERRY-REC must be printed after the dd that writes the record');
});

test('the cache lives under FERRY_CACHE_DIR', () => {
  const saved = process.env.FERRY_CACHE_DIR;
  try {
    process.env.FERRY_CACHE_DIR = '/tmp/somewhere';
    assert.equal(testGuestCacheDir(), '/tmp/somewhere/test-guest');
    delete process.env.FERRY_CACHE_DIR;
    assert.equal(testGuestCacheDir(), '/var/cache/ferry/test-guest');
  } finally {
    if (saved === undefined) delete process.env.FERRY_CACHE_DIR;
    else process.env.FERRY_CACHE_DIR = saved;
  }
});
