/**
 * The per-host agent: JSON-RPC (vscode-jsonrpc framing) over stdio. The
 * controller starts it on demand over the host's transport; it lives as long
 * as that connection, and cleans up what its handlers registered when it ends.
 */
import type { Readable, Writable } from 'node:stream';
import * as rpc from 'vscode-jsonrpc/node.js';
import { asFerryError } from '../util/errors.js';
import type { HandlerContext } from './context.js';
import { handlers } from './registry.js';

/** JSON-RPC error code for errors a handler raised on purpose. */
export const FERRY_ERROR_CODE = -32001;

export function serveAgent(input: Readable, output: Writable): Promise<void> {
  const connection = rpc.createMessageConnection(new rpc.StreamMessageReader(input), new rpc.StreamMessageWriter(output));
  const cleanups: Array<() => void | Promise<void>> = [];
  const ctx: HandlerContext = {
    notify: (method, params) => void connection.sendNotification(method, params),
    onClose: (cleanup) => cleanups.push(cleanup),
  };

  for (const [method, handler] of Object.entries(handlers)) {
    connection.onRequest(method, async (params: unknown) => {
      try {
        return await (handler as (p: unknown, c: HandlerContext) => Promise<unknown>)(params, ctx);
      } catch (e) {
        const err = asFerryError(e);
        return new rpc.ResponseError(FERRY_ERROR_CODE, err.message, err.toJSON());
      }
    });
  }

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
