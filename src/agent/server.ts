/**
 * The per-host agent: JSON-RPC (vscode-jsonrpc framing) over stdio. The
 * controller starts it on demand over the host's transport; it lives as long
 * as that connection, and cleans up what its handlers registered when it ends.
 */
import type { Readable, Writable } from 'node:stream';
import * as rpc from 'vscode-jsonrpc/node.js';
import { asFerryError } from '../util/errors.js';
import type { HandlerContext } from './context.js';
import { findHandler, startHandlers } from './registry.js';

/** JSON-RPC error code for errors a handler raised on purpose. */
export const FERRY_ERROR_CODE = -32001;

function failure(e: unknown): rpc.ResponseError<unknown> {
  const err = asFerryError(e);
  return new rpc.ResponseError(FERRY_ERROR_CODE, err.message, err.toJSON());
}

export function serveAgent(input: Readable, output: Writable): Promise<void> {
  const reader = new rpc.StreamMessageReader(input);
  // A controller killed in the middle of a message must not leave a timer re-arming forever.
  reader.partialMessageTimeout = 0;
  const connection = rpc.createMessageConnection(reader, new rpc.StreamMessageWriter(output));
  const cleanups: Array<() => void | Promise<void>> = [];
  const ctx: HandlerContext = {
    // Once the controller is gone there is nobody to tell; a guard still at work must not fail on it.
    notify: (method, params) => {
      try {
        connection.sendNotification(method, params).catch(() => undefined);
      } catch {
        // the connection is closed or disposed
      }
    },
    onClose: (cleanup) => cleanups.push(cleanup),
  };

  const answer = async (handler: unknown, params: unknown): Promise<unknown> => {
    try {
      return await (handler as (p: unknown, c: HandlerContext) => Promise<unknown>)(params, ctx);
    } catch (e) {
      return failure(e);
    }
  };
  // Every session starts with one of these (system.facts). Once it is
  // answered, while the controller reads it and sends its next call, load
  // what a sync, the case where start-up counts most, needs first: its
  // handlers. Other areas load when first called: loading them all here
  // would delay a sync's first command.
  let preloading = false;
  const preload = (): void => {
    if (preloading) return;
    preloading = true;
    setImmediate(() => {
      findHandler('sync.inspect').catch(() => undefined);
    });
  };
  for (const [method, handler] of Object.entries(startHandlers)) {
    connection.onRequest(method, async (params: unknown) => {
      try {
        return await answer(handler, params);
      } finally {
        preload();
      }
    });
  }
  // Any other method waits for its area to load. A lone parameter that is not
  // an object travels as a one-element array; the handlers above get it
  // unwrapped, and so do these.
  connection.onRequest(async (method: string, params: unknown) => {
    let handler: unknown;
    try {
      handler = await findHandler(method);
    } catch (e) {
      return failure(e);
    }
    if (handler === undefined) return new rpc.ResponseError(rpc.ErrorCodes.MethodNotFound, `Unhandled method ${method}`);
    return answer(handler, Array.isArray(params) ? params[0] : params);
  });

  return new Promise((resolve) => {
    const finish = async (): Promise<void> => {
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch {
          // best effort: the controller is gone, nobody to report to
        }
      }
      resolve();
    };
    let finished = false;
    const finishOnce = (): void => {
      if (finished) return;
      finished = true;
      void finish();
    };
    connection.onClose(finishOnce);
    // The controller went away (stdin closed): clean up and end, whatever the RPC layer noticed.
    input.on('end', () => {
      connection.dispose();
      finishOnce();
    });
    input.on('close', finishOnce);
    connection.listen();
  });
}
