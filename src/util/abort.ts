import { FerryError } from './errors.js';

export function abortError(): FerryError {
  return new FerryError('ABORTED', 'Interrupted by the user', { hint: 'nothing was changed on the source; run the command again to retry' });
}

/** Rejects as soon as `signal` aborts, whatever `p` is doing. */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    void p.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortable(new Promise((r) => setTimeout(r, ms)), signal);
}

/**
 * Throws if `signal` is aborted, once the event loop has dispatched the
 * signals that reached the process: a Ctrl-C that came while the code ran
 * on answers already in hand is read only at the loop's next poll, which
 * the second of two setImmediate turns waits for (the first ends the
 * current turn).
 */
export async function stopIfAborted(signal: AbortSignal): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise((r) => setImmediate(r));
  if (signal.aborted) throw abortError();
}
