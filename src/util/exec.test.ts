import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from './errors.js';
import { run, runningCommandPids } from './exec.js';

const failure = async (p: Promise<unknown>): Promise<FerryError> => {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FerryError, `a FerryError, not ${String(e)}`);
    return e;
  }
  assert.fail('expected the command to fail');
};

test('run gives stdout and stderr without their final newline, takes input on stdin and adds to the environment', async () => {
  const r = await run('sh', ['-c', 'cat; echo "$FERRY_X" >&2; printf "two\\n\\n"'], { input: 'one\n', env: { FERRY_X: 'x1' } });
  assert.equal(r.exitCode, 0);
  assert.equal(r.stdout, 'one\ntwo\n');
  assert.equal(r.stderr, 'x1');
  assert.equal(r.command, 'sh -c cat; echo "$FERRY_X" >&2; printf "two\\n\\n"');
  // PATH still comes from this process's environment.
  assert.equal((await run('sh', ['-c', 'command -v qemu-img >/dev/null && echo found'], { env: { FERRY_X: '1' } })).stdout, 'found');
});

test('a command reading its stdin gets end of file when no input is given', async () => {
  assert.equal((await run('cat', [], { timeoutMs: 5000 })).stdout, '');
});

test('a non-zero exit throws with the last line of stderr, or is returned with allowFailure', async () => {
  const e = await failure(run('sh', ['-c', 'echo first >&2; echo "the reason" >&2; exit 3']));
  assert.equal(e.code, 'COMMAND_FAILED');
  assert.match(e.message, /failed with exit code 3: the reason$/);
  const r = await run('sh', ['-c', 'exit 4'], { allowFailure: true });
  assert.equal(r.exitCode, 4);
});

test('a missing program, a time-out and a cancellation are errors that say so', async () => {
  const missing = await failure(run('ferry-no-such-program', [], { allowFailure: true }));
  assert.match(missing.message, /ENOENT/);
  assert.match(missing.hint ?? '', /install "ferry-no-such-program"/);
  const started = performance.now();
  const slow = await failure(run('sleep', ['10'], { timeoutMs: 200, allowFailure: true }));
  assert.match(slow.message, /timed out after 200 ms/);
  assert.ok(performance.now() - started < 5000);
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  const cancelled = await failure(run('sleep', ['10'], { signal: abort.signal }));
  assert.match(cancelled.message, /cancelled/);
  assert.equal(runningCommandPids().size, 0, 'no command left counted as running');
});

test('a command killed by a signal is an error unless failure is allowed', async () => {
  const e = await failure(run('sh', ['-c', 'kill -9 $$']));
  assert.match(e.message, /killed by SIGKILL/);
  assert.equal((await run('sh', ['-c', 'kill -9 $$'], { allowFailure: true })).exitCode, 128);
});
