import assert from 'node:assert/strict';
import { test } from 'node:test';
import { receiverArgv } from './nbd-receiver.js';

test('receiverArgv opens a block device target (an LV) with host_device, a file with file', () => {
  const argv = receiverArgv(
    [
      { path: '/dev/vgb/root', format: 'raw', name: 'drive0', device: true },
      { path: '/var/lib/ferry/images/d.qcow2', format: 'qcow2', name: 'drive1' },
    ],
    '127.0.0.1',
    10809,
  ).join(' ');
  assert.match(argv, /driver=host_device,filename=\/dev\/vgb\/root,node-name=file0/);
  assert.match(argv, /driver=file,filename=\/var\/lib\/ferry\/images\/d\.qcow2,node-name=file1/);
});
