import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createImage, formatForNewImage } from './image-info.js';
import { statPath } from './stat.js';

test('formatForNewImage prefers the request, then the extension, then the source', () => {
  assert.equal(formatForNewImage('/a/disk.img', 'qcow2'), 'raw');
  assert.equal(formatForNewImage('/a/disk.qcow2', 'raw'), 'qcow2');
  assert.equal(formatForNewImage('/a/disk', 'qcow2'), 'qcow2');
  assert.equal(formatForNewImage('/a/disk.img', 'raw', 'qcow2'), 'qcow2');
});

test('a raw file made with permission bits has them, as its stat says, at the size asked', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-image-'));
  try {
    await createImage({ path: join(dir, 'vars.fd'), format: 'raw', sizeBytes: 540672, mode: 0o600 });
    assert.deepEqual(await statPath(join(dir, 'vars.fd')), { exists: true, type: 'file', size: 540672, allocated: 0, mode: 0o600 });
    await assert.rejects(createImage({ path: join(dir, 'vars.fd'), format: 'raw', sizeBytes: 1 }), /EEXIST/, 'never over an existing file');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
