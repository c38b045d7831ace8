import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { digestCachePath, dropDigestCache, loadDigestCache, saveDigestCache } from './digest-cache.js';
import { DigestTable } from './digest-table.js';

test('remembered digests hold until the file is written, resized or replaced', async () => {
  process.env.FERRY_SYNC_STATE_DIR ??= `/tmp/ferry-digest-cache-test-${process.pid}`;
  const file = `/tmp/ferry-digest-cache-${process.pid}.img`;
  await fs.writeFile(file, Buffer.alloc(8192, 1));
  const table = new DigestTable(2);
  table.set(0, Buffer.alloc(16, 3));
  table.set(1, undefined);
  try {
    await saveDigestCache(file, 4096, table);
    const back = await loadDigestCache(file, 4096, 2);
    assert.ok(back && back.same(0, table) && back.isZero(1));
    assert.equal(await loadDigestCache(file, 8192, 1), undefined, 'another block size does not match');

    // Any write moves mtime and ctime, even one that puts back the same bytes.
    const fh = await fs.open(file, 'r+');
    await fh.write(Buffer.alloc(1, 1), 0, 1, 0);
    await fh.close();
    assert.equal(await loadDigestCache(file, 4096, 2), undefined);

    await saveDigestCache(file, 4096, table);
    await fs.writeFile(`${file}.new`, Buffer.alloc(8192, 1));
    await fs.rename(`${file}.new`, file);
    assert.equal(await loadDigestCache(file, 4096, 2), undefined, 'a replaced file is another inode');

    await saveDigestCache(file, 4096, table);
    await dropDigestCache(file);
    await assert.rejects(fs.stat(digestCachePath(file)));
  } finally {
    await fs.rm(file, { force: true });
  }
});
