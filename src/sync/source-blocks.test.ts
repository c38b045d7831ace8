import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { statDisk } from '../storage/image-info.js';
import { BlockGeometry } from './block-geometry.js';
import { DigestTable } from './digest-table.js';
import { sourceBlocks, type SourceBlock } from './source-blocks.js';
import { openSourceDisk } from './source-disk.js';
import { SourceScan } from './source-scan.js';
import { tempDir } from './test-fixtures.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 4096;
const COUNT = 8;
let dir: string;
before(async () => (dir = await tempDir('source-blocks')));
after(() => fs.rm(dir, { recursive: true, force: true }));

function describe(b: SourceBlock): string {
  if (b.zero) return `${b.index}:zero`;
  return `${b.index}:${b.slot ? 'read' : 'decided'}`;
}

test("from a scan, blocks equal to the destination's are decided without their bytes; a changed one is read again as it is now", async () => {
  const path = `${dir}/src.img`;
  const data = randomBytes(COUNT * BLOCK);
  data.fill(0, 6 * BLOCK, 7 * BLOCK);
  await fs.writeFile(path, data);
  const scan = await SourceScan.start(await statDisk(path), BLOCK, 0);
  while (scan.scanned < COUNT) await new Promise((r) => setTimeout(r, 2));
  // Changed after the scan: the block sent must be what the disk holds at send time.
  const now = randomBytes(BLOCK);
  const fh = await fs.open(path, 'r+');
  await fh.write(now, 0, BLOCK, 5 * BLOCK);
  await fh.close();
  const geometry = new BlockGeometry(data.length, BLOCK);
  const destinationDigests = new DigestTable(COUNT);
  for (let i = 0; i < COUNT; i++) destinationDigests.set(i, xxh128(data.subarray(i * BLOCK, (i + 1) * BLOCK)));
  destinationDigests.set(5, Buffer.alloc(16, 9));
  const seen: SourceBlock[] = [];
  try {
    const source = scan.source;
    for await (const b of sourceBlocks({ source, geometry, dataBlocks: await source.dataBlocks, startBlock: 1, scan, destinationDigests, arrived: () => Promise.resolve(), needsDigest: () => true })) {
      seen.push(b);
      if (!b.zero && b.slot) source.pool.release(b.slot);
    }
  } finally {
    await scan.close();
  }
  assert.deepEqual(seen.map(describe), ['1:decided', '2:decided', '3:decided', '4:decided', '5:read', '6:zero', '7:decided']);
  const changed = seen.find((b) => b.index === 5);
  assert.ok(changed && !changed.zero);
  assert.deepEqual(changed.digest, xxh128(now));
});

test('without a scan every block is read from the disk', async () => {
  const path = `${dir}/plain.img`;
  await fs.writeFile(path, randomBytes(COUNT * BLOCK));
  const source = await openSourceDisk(await statDisk(path), BLOCK, 0);
  const seen: string[] = [];
  try {
    const geometry = new BlockGeometry(COUNT * BLOCK, BLOCK);
    for await (const b of sourceBlocks({
      source,
      geometry,
      dataBlocks: await source.dataBlocks,
      startBlock: 6,
      destinationDigests: new DigestTable(COUNT),
      arrived: () => Promise.resolve(),
      needsDigest: () => true,
    })) {
      seen.push(describe(b));
      if (!b.zero && b.slot) source.pool.release(b.slot);
    }
  } finally {
    await source.pool.close();
    await source.disk.close();
  }
  assert.deepEqual(seen, ['6:read', '7:read']);
});
