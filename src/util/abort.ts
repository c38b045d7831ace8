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
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortable(new Promise((r) => setTimeout(r, ms)), signal);
}
