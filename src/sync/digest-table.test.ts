import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DigestTable } from './digest-table.js';

test('DigestTable compares blocks and wakes waiters', async () => {
  const a = new DigestTable(3);
  const b = new DigestTable(3);
  const waited = b.wait(1).then(() => 'arrived');
  a.set(0, undefined);
  b.set(0, undefined);
  a.set(1, Buffer.alloc(16, 7));
  b.set(1, Buffer.alloc(16, 7));
  a.set(2, Buffer.alloc(16, 1));
  b.set(2, undefined);
  assert.equal(await waited, 'arrived');
  assert.ok(a.same(0, b));
  assert.ok(a.same(1, b));
  assert.ok(!a.same(2, b));
  assert.ok(a.has(2) && !new DigestTable(1).has(0));
});

test('DigestTable round-trips through bytes, keeping unknown blocks unknown', () => {
  const a = new DigestTable(3);
  a.set(0, Buffer.alloc(16, 9));
  a.set(2, undefined);
  const b = DigestTable.fromBytes(3, a.toBytes())!;
  assert.ok(b.same(0, a) && b.isZero(2) && !b.has(1));
  assert.equal(b.known(), 2);
  assert.equal(DigestTable.fromBytes(4, a.toBytes()), undefined);
});
