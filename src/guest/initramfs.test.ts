import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { run } from '../util/exec.js';
import { detectCompression, listInitramfsBuffer, modulesIn, parseCpioNames } from './initramfs.js';

/** Writes a newc archive the way the kernel's gen_init_cpio does. */
function newc(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  for (const [name, body] of [...Object.entries(files), ['TRAILER!!!', ''] as const]) {
    const data = Buffer.from(body);
    const fields = [ino++, 0o100644, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length + 1, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''), 'latin1');
    const nameBuf = Buffer.from(`${name}\0`);
    parts.push(header, nameBuf, pad(110 + nameBuf.length), data, pad(data.length));
  }
  return Buffer.concat(parts);
}

test('lists a plain cpio archive', () => {
  const { names } = parseCpioNames(newc({ 'kernel/x86/microcode/GenuineIntel.bin': 'ucode', init: '#!/bin/sh' }));
  assert.deepEqual(names, ['kernel/x86/microcode/GenuineIntel.bin', 'init']);
});

test('lists early microcode followed by a gzip main archive', async () => {
  const early = newc({ 'kernel/x86/microcode/AuthenticAMD.bin': 'x' });
  const main = gzipSync(newc({ 'usr/lib/modules/6.1.0-50-cloud-amd64/kernel/drivers/block/virtio_blk.ko': 'elf', 'scripts/local': 'sh' }));
  const names = await listInitramfsBuffer(Buffer.concat([early, Buffer.alloc(512), main]));
  assert.equal(names.length, 3);
  assert.deepEqual([...modulesIn(names)], ['virtio_blk']);
});

test('lists a zstd main archive (Debian 12 default)', async () => {
  const main = newc({ 'lib/modules/6.1.0/kernel/drivers/net/xen-netfront.ko': 'elf', 'lib/modules/6.1.0/kernel/drivers/block/xen-blkfront.ko.zst': 'elf' });
  const z = await run('sh', ['-c', 'printf %s "$1" | base64 -d | zstd -q -c | base64 -w0', 'sh', main.toString('base64')]);
  const compressed = Buffer.from(z.stdout, 'base64');
  assert.equal(detectCompression(compressed), 'zstd');
  const names = await listInitramfsBuffer(compressed);
  assert.deepEqual([...modulesIn(names)].sort(), ['xen_blkfront', 'xen_netfront']);
});

test('unknown bytes after an archive end the listing', async () => {
  assert.deepEqual(await listInitramfsBuffer(Buffer.concat([newc({ a: '1' }), Buffer.from('garbage!')])), ['a']);
});
