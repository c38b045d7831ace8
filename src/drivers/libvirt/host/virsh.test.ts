import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../../util/errors.js';
import { virsh, virshBatch } from './virsh.js';

// libvirt's own test driver: a real virsh and a real connection, with no daemon (a running domain "test"; its CPU time
// follows the clock, so dominfo's differs from one call to the next).
const TEST_URI = 'test:///default';

test('a batch gives each command the output it has when run alone', async () => {
  const commands = [
    ['domstate', '--reason', '--domain', 'test'],
    ['dumpxml', '--domain', 'test'],
    ['domuuid', '--domain', 'test'],
    ['list', '--all', '--name'],
  ];
  const batch = await virshBatch(TEST_URI, commands);
  const alone = await Promise.all(commands.map((c) => virsh(TEST_URI, c)));
  assert.deepEqual(
    batch.map((r) => [r.exitCode, r.stdout]),
    alone.map((r) => [r.exitCode, r.stdout]),
  );
  assert.match(batch[1]!.stdout, /^<domain type='test'/);
});

test("a batch keeps each argument whole, whatever it holds (virsh's own quoting)", async () => {
  const words = ['a b', 'semi;colon', 'quote"d', "it's", 'back\\slash', '--not-an-option', '#hash', ''];
  const [r] = await virshBatch(TEST_URI, [
    ['echo', ...words.map((w) => `<${w}>`)],
    ['domstate', 'test'],
  ]);
  assert.equal(r!.stdout, words.map((w) => `<${w}>`).join(' '));
});

test("a failed command fails alone: the others' output stays, and a tolerated failure comes back classified", async () => {
  const [first, missing, last] = await virshBatch(
    TEST_URI,
    [
      ['domstate', '--domain', 'test'],
      ['domstate', '--domain', 'nosuch'],
      ['domstate', '--domain', 'test'],
    ],
    { tolerate: ['no-domain'] },
  );
  assert.equal(first!.stdout.trim(), 'running');
  assert.equal(missing!.exitCode, 1);
  assert.equal(missing!.failure?.kind, 'no-domain');
  assert.match(missing!.stderr, /nosuch/);
  assert.equal(last!.stdout.trim(), 'running');
  assert.equal(last!.failure, undefined);
});

test('a failure not tolerated throws the same error as the command alone', async () => {
  const alone = await virsh(TEST_URI, ['dominfo', '--domain', 'nosuch']).catch((e: unknown) => e);
  const batched = await virshBatch(TEST_URI, [
    ['domstate', '--domain', 'test'],
    ['dominfo', '--domain', 'nosuch'],
  ]).catch((e: unknown) => e);
  assert.ok(alone instanceof FerryError && batched instanceof FerryError);
  assert.equal(batched.code, 'UNKNOWN_VM');
  assert.equal(batched.message, alone.message);
});

test('a connection that fails fails every command of the batch', async () => {
  const results = await virshBatch('test:///nonexistent/path.xml', [['domstate', 'test'], ['list']], { tolerate: ['other', 'unreachable'] });
  assert.equal(results.length, 2);
  for (const r of results) {
    assert.notEqual(r.exitCode, 0);
    assert.ok(r.failure);
  }
});
