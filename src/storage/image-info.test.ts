import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatForNewImage } from './image-info.js';

test('formatForNewImage prefers the request, then the extension, then the source', () => {
  assert.equal(formatForNewImage('/a/disk.img', 'qcow2'), 'raw');
  assert.equal(formatForNewImage('/a/disk.qcow2', 'raw'), 'qcow2');
  assert.equal(formatForNewImage('/a/disk', 'qcow2'), 'qcow2');
  assert.equal(formatForNewImage('/a/disk.img', 'raw', 'qcow2'), 'qcow2');
});
