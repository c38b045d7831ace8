import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unescapeOctal } from './octal-escapes.js';

test('unescapeOctal decodes three-digit octal escapes and leaves the rest', () => {
  assert.equal(unescapeOctal('/mnt/old\\040disk'), '/mnt/old disk');
  assert.equal(unescapeOctal('a\\011b\\134c'), 'a\tb\\c');
  assert.equal(unescapeOctal('\\04'), '\\04', 'two digits are no escape');
  assert.equal(unescapeOctal('\\089'), '\\089', '8 and 9 are no octal digits');
  assert.equal(unescapeOctal('/plain/path'), '/plain/path');
});
