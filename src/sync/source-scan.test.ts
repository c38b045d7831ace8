/**
 * A sync that starts from a head-start scan of its source, sender and
 * receiver run in this process against real files on loopback.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { inspectDisk } from '../storage/image-info.js';
import { receiveFrom } from './test-fixtures.js';
import { startSend, type SendResult } from './sender.js';
import { SourceScan } from './source-scan.js';
import { xxh128 } from './xxh128.js';

const BLOCK = 64 * 1024;
const BLOCKS = 256;
const dir = `/var/tmp/ferry-source-scan-test-${process.pid}`;
const src = `${dir}/src.img`;
const dst = `${dir}/dst.img`;

before(async () => {
  await fs.mkdir(`${dir}/state`, { recursive: true });
  process.env.FERRY_SYNC_STATE_DIR = `${dir}/state`;
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function overwrite(path: string, blocks: number[]): Promise<void> {
  const fh = await fs.open(path, 'r+');
  for (const b of blocks) await fh.write(randomBytes(BLOCK), 0, BLOCK, b * BLOCK);
  await fh.close();
}

/** Waits until the scan has hashed the whole source. */
async function scanned(scan: SourceScan): Promise<void> {
  while (scan.scanned < BLOCKS) await new Promise((r) => setTimeout(r, 5));
}

/** One sync from `src` into the existing `dst`, from the given scan. */
async function syncWith(scan: SourceScan): Promise<SendResult> {
  const info = await inspectDisk(src);
  const sending = await startSend(
    { path: src, address: '127.0.0.1', sourceId: 'test', blockSize: BLOCK, compress: 'none', resume: false, dryRun: false, verify: true, fsync: true, hashThreads: 1, info, scan },
    () => undefined,
  );
  const session = await receiveFrom(sending, dst, info.size!, BLOCK);
  const sent = await sending.result;
  await session.result;
  return sent;
}

test('blocks the scan found equal do not cross; changed ones are read again, as they are at send time', async () => {
  await fs.writeFile(src, randomBytes(BLOCK * BLOCKS));
  await fs.copyFile(src, dst);
  await overwrite(src, [3, 100, 255]);
  const scan = await SourceScan.start(await inspectDisk(src), BLOCK, 1);
  await scanned(scan);
  // Changed again after the scan: what crosses is what the block holds now.
  await overwrite(src, [100]);
  const r = await syncWith(scan);
  assert.equal(r.blocksChanged, 3);
  assert.equal(r.bytesChanged, 3 * BLOCK);
  assert.equal(r.verified, true);
  assert.deepEqual(await fs.readFile(dst), await fs.readFile(src));
});

test('when most scanned blocks differ, the scan is given up and the rest is read as usual', async () => {
  await fs.writeFile(src, randomBytes(BLOCK * BLOCKS));
  await fs.writeFile(dst, randomBytes(BLOCK * BLOCKS));
  const scan = await SourceScan.start(await inspectDisk(src), BLOCK, 1);
  await scanned(scan);
  const r = await syncWith(scan);
  assert.equal(r.blocksChanged, BLOCKS);
  assert.equal(r.verified, true);
  assert.deepEqual(await fs.readFile(dst), await fs.readFile(src));
});

test('a scan of another block size is not used', async () => {
  await overwrite(src, [7]);
  const scan = await SourceScan.start(await inspectDisk(src), BLOCK * 2, 1);
  const r = await syncWith(scan);
  assert.equal(r.blocksChanged, 1);
  assert.deepEqual(await fs.readFile(dst), await fs.readFile(src));
});

test('a scan stopped mid-way reports how far it got, with the digests of the disk up to there', async () => {
  // Large enough that the threads still have queued chunks when stop() comes.
  const big = `${dir}/big.img`;
  const blocks = 4096;
  const fh = await fs.open(big, 'w');
  for (let b = 0; b < blocks; b += 256) await fh.write(randomBytes(BLOCK * 256), 0, BLOCK * 256, b * BLOCK);
  await fh.close();
  const scan = await SourceScan.start(await inspectDisk(big), BLOCK, 2);
  while (scan.scanned === 0) await new Promise((r) => setImmediate(r));
  // How far it gets depends on the threads' speed; what it reports must hold.
  const at = await scan.stop();
  assert.ok(at > 0 && at <= blocks, `stopped at ${at} of ${blocks}`);
  assert.equal(scan.scanned, at);
  if (at < blocks) assert.equal(await scan.reached(at), false);
  const data = await fs.readFile(big);
  for (const i of [0, Math.floor(at / 2), at - 1]) {
    assert.deepEqual(Buffer.from(scan.digests.digest(i)!), xxh128(data.subarray(i * BLOCK, (i + 1) * BLOCK)), `block ${i}`);
  }
  await scan.close();
});

test('a scan stopped and closed at once ends, even with nothing else keeping the process alive', () => {
  // In a process of its own: there, a close() that never finished would let node exit mid-await.
  const file = `${dir}/close-at-once.mjs`;
  writeFileSync(
    file,
    `const { inspectDisk } = await import(${JSON.stringify(new URL('../storage/image-info.js', import.meta.url).href)});
     const { SourceScan } = await import(${JSON.stringify(new URL('./source-scan.js', import.meta.url).href)});
     const scan = await SourceScan.start(await inspectDisk(${JSON.stringify(src)}), ${BLOCK * 2}, 1);
     await scan.stop();
     await scan.close();
     console.log('closed');`,
  );
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stdout.trim(), 'closed', `exit ${r.status}: ${r.stderr}`);
});
