import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labLvmConf } from './lvm.js';

test("a lab host's lvm.conf accepts only its own PVs' loop devices", () => {
  const conf = labLvmConf(['/dev/loop3', '/dev/loop7']);
  assert.match(conf, /global_filter = \[ "a\|\^\/dev\/loop3\$\|", "a\|\^\/dev\/loop7\$\|", "r\|\.\*\|" \]/);
  assert.match(labLvmConf([]), /global_filter = \[ "r\|\.\*\|" \]/);
  assert.match(conf, /udev_sync = 0/);
});
