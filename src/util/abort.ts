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
