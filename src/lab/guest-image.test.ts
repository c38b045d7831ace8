import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../util/exec.js';
import { GUEST_APPEND, GUEST_INIT, GUEST_MODULES, testGuestCacheDir, testGuestQemuArgs } from './guest-image.js';

test('the guest init script is valid busybox shell', async () => {
  const r = await run('busybox', ['sh', '-n', '-c', GUEST_INIT], { allowFailure: true });
  assert.equal(r.exitCode, 0, r.stderr);
});

test('the guest init loads the virtio modules in dependency order and reports only after a synced write', () => {
  const loop = /for m in ([^;]+);/.exec(GUEST_INIT);
  assert.equal(loop?.[1], GUEST_MODULES.join(' '));
  assert.ok(GUEST_MODULES.indexOf('virtio_ring') < GUEST_MODULES.indexOf('virtio'));
  assert.equal(GUEST_MODULES[GUEST_MODULES.length - 1], 'virtio_blk');
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

test('testGuestQemuArgs boots under TCG with one virtio drive per disk, in order', () => {
  const args = testGuestQemuArgs(
    { kernel: '/k', initrd: '/i', append: GUEST_APPEND },
    {
      disks: [
        { path: '/a.qcow2', format: 'qcow2' },
        { path: '/b.raw', format: 'raw' },
      ],
      serialLog: '/log',
      qmpSocket: '/qmp.sock',
      extraAppend: 'ferry.dirty=16',
    },
  );
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
  assert.deepEqual(after('-accel'), ['tcg']);
  assert.deepEqual(after('-drive'), ['file=/a.qcow2,if=virtio,format=qcow2', 'file=/b.raw,if=virtio,format=raw']);
  assert.deepEqual(after('-serial'), ['file:/log']);
  assert.deepEqual(after('-append'), [`${GUEST_APPEND} ferry.dirty=16`]);
  assert.deepEqual(after('-qmp'), ['unix:/qmp.sock,server=on,wait=off']);
  assert.ok(args.includes('-no-reboot'));
});
