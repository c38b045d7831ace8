import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from './errors.js';
import { formatMiB, parseSize, readSize } from './units.js';

test('readSize reads bytes and binary K, M, G and T, with or without "iB" or "B", in either case', () => {
  assert.equal(readSize('4096'), 4096);
  assert.equal(readSize('64M'), 64 * 1024 * 1024);
  assert.equal(readSize('64m'), 64 * 1024 * 1024);
  assert.equal(readSize('2K'), 2048);
  assert.equal(readSize('2KB'), 2048);
  assert.equal(readSize('1MiB'), 1048576);
  assert.equal(readSize('3G'), 3 * 1024 ** 3);
  assert.equal(readSize('1T'), 1024 ** 4);
  assert.equal(readSize(' 1M '), 1048576);
});

test('readSize gives nothing for paths, fractions, negative or unknown units', () => {
  for (const text of ['', '/var/lib/ferry/images/a.qcow2', 'disk.img', '1.5M', '-1M', '1P', 'M', '1 M', '512B', '1iB']) {
    assert.equal(readSize(text), undefined, text);
  }
});

test('parseSize is a usage error that shows the size to write', () => {
  assert.equal(parseSize('1M'), 1048576);
  assert.throws(
    () => parseSize('1.5M'),
    (e: unknown) => e instanceof FerryError && e.code === 'USAGE' && e.message === 'Invalid size "1.5M"' && /e\.g\. 1M/.test(e.hint ?? ''),
  );
});

test('formatMiB prints MiB without the unit, to one decimal unless told otherwise', () => {
  assert.equal(formatMiB(0), '0.0');
  assert.equal(formatMiB(1536 * 1024), '1.5');
  assert.equal(formatMiB(64 * 1024 * 1024), '64.0');
  assert.equal(formatMiB(64 * 1024 * 1024 + 700 * 1024, 0), '65');
  assert.equal(formatMiB(100 * 1024, 2), '0.10');
});
