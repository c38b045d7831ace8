import assert from 'node:assert/strict';
import { stat } from 'node:fs';
import { test } from 'node:test';
import { FerryError } from './errors.js';
import { stopIfAborted } from './abort.js';

test('stopIfAborted sees a signal that reached the process while the code ran on, before the loop dispatched it', async () => {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGUSR2', onSignal);
  try {
    const stopped = await new Promise<unknown>((resolve) =>
      // Inside an I/O callback, as the controller is when an agent's answer comes.
      stat('/', () => {
        process.kill(process.pid, 'SIGUSR2');
        assert.equal(controller.signal.aborted, false, 'the signal is not dispatched yet');
        stopIfAborted(controller.signal).then(() => resolve(undefined), resolve);
      }),
    );
    assert.ok(stopped instanceof FerryError && stopped.code === 'ABORTED', String(stopped));
  } finally {
    process.off('SIGUSR2', onSignal);
  }
});

test('stopIfAborted lets a move that was not interrupted go on', async () => {
  await stopIfAborted(new AbortController().signal);
});
