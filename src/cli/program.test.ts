import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildProgram, ferryVersion, invokedCommand } from './program.js';

const argv = (...args: string[]): string[] => ['node', 'ferry', ...args];
const ALL = ['agent', 'vm', 'migrate', 'history', 'recover', 'lab', 'demo', 'guest', 'sync'];

test('invokedCommand names the command given first or after --hosts', () => {
  assert.equal(invokedCommand(argv('sync', 'a:/x', 'b:/y')), 'sync');
  assert.equal(invokedCommand(argv('--hosts', 'h.yaml', 'vm', 'list', 'a')), 'vm');
  assert.equal(invokedCommand(argv('--hosts=h.yaml', 'migrate', 'vm1')), 'migrate');
});

test('invokedCommand gives nothing for help, options, unknown commands or no command', () => {
  assert.equal(invokedCommand(argv()), undefined);
  assert.equal(invokedCommand(argv('--help')), undefined);
  assert.equal(invokedCommand(argv('help', 'sync')), undefined);
  assert.equal(invokedCommand(argv('-h', 'sync')), undefined);
  assert.equal(invokedCommand(argv('synk', 'a', 'b')), undefined);
  assert.equal(invokedCommand(argv('--hosts')), undefined);
  assert.equal(invokedCommand(argv('constructor')), undefined);
});

test('buildProgram registers only the invoked command besides agent', async () => {
  const program = await buildProgram(argv('sync', 'a:/x', 'b:/y'));
  assert.deepEqual(
    program.commands.map((c) => c.name()),
    ['agent', 'sync'],
  );
  // The command is complete: its options are there for parsing and `ferry sync --help`.
  assert.ok(program.commands[1]!.options.some((o) => o.long === '--block-size'));
});

test('buildProgram registers every command, in help order, when no command is plain', async () => {
  for (const args of [[], ['--help'], ['help', 'sync'], ['synk']]) {
    const program = await buildProgram(argv(...args));
    assert.deepEqual(
      program.commands.map((c) => c.name()),
      ALL,
      args.join(' '),
    );
  }
});

test('ferry --version prints the version of its package', async () => {
  assert.match(ferryVersion(), /^\d+\.\d+\.\d+/);
});
