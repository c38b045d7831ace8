/**
 * ferry sync between two agents on loopback (hosts ha = 127.0.0.12 and
 * hb = 127.0.0.13): raw and qcow2 endpoints, sparse sources, delta re-syncs
 * counted exactly, dry runs and compression. Equality is checked with cmp
 * or qemu-img compare, independently of ferry's own verification.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { block, ferry, makeImage, makeLab, MiB, overwriteBlocks, sameContent, sh, type Lab } from './sync-helpers.js';

let lab: Lab;
before(async () => {
  lab = await makeLab('sync');
});
after(async () => {
  await lab.cleanup();
});

test('sync copies a sparse raw file to a missing destination, sending only its data', async () => {
  const src = `${lab.dir}/a.img`;
  const dst = `${lab.dir}/a-copy.img`;
  await makeImage(src, 96, [
    [0, 4],
    [30, 10],
    [90, 6],
  ]);
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.status, 'ok');
  assert.equal(r.json.verified, true);
  assert.equal(r.json.created, true);
  assert.equal(r.json.direct_io, true, 'a durable copy onto ext4 bypasses the page cache');
  assert.equal(r.json.bytes_total, 96 * MiB);
  assert.equal(r.json.blocks_changed, 20);
  assert.equal(r.json.blocks_zero, 76);
  assert.ok((r.json.bytes_sent as number) >= 20 * MiB && (r.json.bytes_sent as number) < 20 * MiB + 64 * 1024);
  assert.ok(await sameContent(src, dst));
  const st = await fs.stat(dst);
  assert.ok(st.blocks * 512 <= 21 * MiB, `destination not sparse: ${st.blocks * 512} bytes allocated`);
});

test('sync into an older copy sends exactly the changed blocks, zeroed ones as holes', async () => {
  const src = `${lab.dir}/a.img`;
  const dst = `${lab.dir}/a-copy.img`;
  await overwriteBlocks(src, [1, 31, 32, 50, 95]); // 50 was a hole
  await overwriteBlocks(src, [35, 36], true); // data blocks now zeros
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.blocks_changed, 7);
  assert.equal(r.json.bytes_changed, 5 * MiB);
  assert.equal(r.json.bytes_written, 5 * MiB);
  assert.ok((r.json.bytes_sent as number) < 5 * MiB + 64 * 1024, `sent ${String(r.json.bytes_sent)}`);
  assert.equal(r.json.verified, true);
  assert.ok(await sameContent(src, dst));
});

test('a re-sync trusts the digests remembered from the last sync only while the destination is untouched', async () => {
  const src = `${lab.dir}/c.img`;
  const dst = `${lab.dir}/c-copy.img`;
  await makeImage(src, 32, [[0, 32]]);
  const sync = async (...extra: string[]): Promise<Record<string, unknown>> => {
    const r = await ferry(['sync', '--json', ...extra, `ha:${src}`, `hb:${dst}`], lab.env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(await sameContent(src, dst));
    return r.json;
  };
  assert.equal((await sync()).blocks_cached, 0);

  // Only the source changed: the destination is not read again.
  await overwriteBlocks(src, [3]);
  let r = await sync();
  assert.equal(r.blocks_cached, 32);
  assert.equal(r.blocks_changed, 1);

  // Written behind ferry's back: the record no longer counts, and the write is repaired.
  await overwriteBlocks(dst, [7]);
  r = await sync();
  assert.equal(r.blocks_cached, 0);
  assert.equal(r.blocks_changed, 1);
  assert.equal(r.bytes_written, MiB);

  r = await sync('--rehash');
  assert.equal(r.blocks_cached, 0);
  assert.equal(r.blocks_changed, 0);

  // A copy left unflushed is not remembered.
  r = await sync('--no-fsync', '--no-direct');
  assert.equal(r.blocks_cached, 32);
  assert.equal(r.direct_io, false);
  assert.equal((await sync()).blocks_cached, 0);
});

test('sync --dry-run reports what would be sent and writes nothing', async () => {
  const src = `${lab.dir}/a.img`;
  const dst = `${lab.dir}/a-copy.img`;
  await overwriteBlocks(src, [2, 3]);
  const before = await fs.readFile(dst);
  const r = await ferry(['sync', '--json', '--dry-run', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.status, 'dry-run');
  assert.equal(r.json.blocks_changed, 2);
  assert.equal(r.json.bytes_changed, 2 * MiB);
  assert.ok((await fs.readFile(dst)).equals(before));
  const missing = await ferry(['sync', '--json', '--dry-run', `ha:${src}`, `hb:${lab.dir}/never.img`], lab.env);
  assert.equal(missing.code, 0, missing.stderr);
  assert.equal(missing.json.blocks_changed, 19); // every data block of the source
  await assert.rejects(fs.stat(`${lab.dir}/never.img`));
});

test('sync qcow2 to a new qcow2 keeps the format and the guest-visible content', async () => {
  const raw = `${lab.dir}/b.img`;
  const src = `${lab.dir}/b.qcow2`;
  const dst = `${lab.dir}/b-copy.qcow2`;
  await makeImage(raw, 64, [
    [0, 3],
    [20, 5],
  ]);
  assert.equal((await sh('qemu-img', ['convert', '-O', 'qcow2', raw, src])).code, 0);
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.blocks_changed, 8);
  assert.equal(r.json.verified, true);
  const info = JSON.parse((await sh('qemu-img', ['info', '--output=json', dst])).out) as { format: string; 'virtual-size': number; 'actual-size': number };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], 64 * MiB);
  assert.ok(info['actual-size'] < 12 * MiB, `qcow2 destination not sparse: ${info['actual-size']}`);
  assert.ok(await sameContent(src, dst));

  // A delta into the qcow2 copy: two blocks change in the source.
  assert.equal((await sh('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 1M', '-c', 'write -P 0x33 40M 1M', src])).code, 0);
  const d = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(d.json.blocks_changed, 2);
  assert.ok(await sameContent(src, dst));
});

test('sync qcow2 to raw writes the guest-visible bytes', async () => {
  const src = `${lab.dir}/b.qcow2`;
  const dst = `${lab.dir}/b-flat.img`;
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse((await sh('qemu-img', ['info', '--output=json', dst])).out) as { format: string };
  assert.equal(info.format, 'raw');
  assert.equal((await sh('qemu-img', ['convert', '-O', 'raw', src, `${lab.dir}/b-ref.img`])).code, 0);
  assert.ok(await sameContent(`${lab.dir}/b-ref.img`, dst));
});

test('sync of a size that is no multiple of 4 KiB writes the aligned part directly and the tail through the cache', async () => {
  const src = `${lab.dir}/odd.img`;
  const dst = `${lab.dir}/odd-copy.img`;
  const size = 3 * MiB + 1234;
  const bytes = Buffer.concat([block(), block(), block(), block().subarray(0, 1234)]);
  await fs.writeFile(src, bytes);
  const r = await ferry(['sync', '--json', '--block-size', '64K', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.direct_io, true);
  assert.equal(r.json.verified, true);
  assert.equal(r.json.bytes_written, size);
  assert.equal((await fs.stat(dst)).size, size);
  assert.ok(await sameContent(src, dst));
  // The tail block changes alone: found, sent and verified alone.
  const fh = await fs.open(src, 'r+');
  await fh.write(Buffer.from('tail'), 0, 4, size - 4);
  await fh.close();
  const again = await ferry(['sync', '--json', '--block-size', '64K', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.blocks_changed, 1);
  assert.equal(again.json.bytes_written, 1234 + ((3 * MiB) % (64 * 1024)));
  assert.equal(again.json.verified, true);
  assert.ok(await sameContent(src, dst));
});

test('sync --compress zstd sends fewer bytes than it changes on compressible data', async () => {
  const src = `${lab.dir}/c.img`;
  const dst = `${lab.dir}/c-copy.img`;
  await makeImage(src, 32, [[0, 16]], true);
  const r = await ferry(['sync', '--json', '--compress', 'zstd', src, dst], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.bytes_changed, 16 * MiB);
  assert.ok((r.json.bytes_sent as number) < 4 * MiB, `sent ${String(r.json.bytes_sent)}`);
  assert.ok(await sameContent(src, dst));
});

test('sync writes into a block device (loop) and reads from one', async () => {
  const src = `${lab.dir}/d.img`;
  const backing = `${lab.dir}/d-dev.img`;
  await makeImage(src, 48, [
    [0, 2],
    [10, 6],
  ]);
  await makeImage(backing, 64, [[40, 8]]); // old content beyond the source's end stays
  const loop = (await sh('losetup', ['-f', '--show', backing])).out.trim();
  assert.match(loop, /^\/dev\/loop\d+$/);
  try {
    const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${loop}`], lab.env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.blocks_changed, 16); // 8 data blocks, and 8 old ones zeroed
    assert.equal((await sh('cmp', ['-n', String(48 * MiB), src, loop])).code, 0);
    const back = await ferry(['sync', '--json', `ha:${loop}`, `hb:${lab.dir}/d-back.img`], lab.env);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.json.bytes_total, 64 * MiB);
    assert.equal((await sh('cmp', [loop, `${lab.dir}/d-back.img`])).code, 0);
  } finally {
    await sh('losetup', ['-d', loop]);
  }
});

test('verification reads the destination back and names the ranges that differ', async () => {
  const src = `${lab.dir}/v.img`;
  const dst = `${lab.dir}/v-corrupt.img`;
  await makeImage(src, 16, [[0, 4]]);
  // The destination agent damages block 2 (a written one) on disk after writing, before reading back.
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], { ...lab.env, FERRY_SYNC_CORRUPT_BLOCK: '2' });
  assert.equal(r.code, 1);
  assert.equal(r.json.status, 'verify-failed');
  assert.equal(r.json.verified, false);
  assert.deepEqual(r.json.mismatches, [{ start: 2 * MiB, length: MiB }]);
  assert.match(r.stderr, new RegExp(`Verification failed: .* ${2 * MiB}\\+${MiB}`));
  // A second run repairs exactly that block.
  const again = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.json.blocks_changed, 1);
  assert.ok(await sameContent(src, dst));
});
