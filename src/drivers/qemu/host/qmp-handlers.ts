/**
 * QMP sessions held by the agent on behalf of the controller: the monitor
 * socket is on this host, so the agent speaks QMP and forwards replies and
 * events. A session shares the agent's one connection to that monitor (a
 * migration's guard may hold it too) and ends when the controller goes away.
 */
import { acquireQmp, releaseQmp } from './qmp-pool.js';
import type { QmpClient, QmpEvent } from '../../../qmp/client.js';
import { FerryError } from '../../../util/errors.js';
import type { HandlerContext } from '../../../agent/context.js';

interface Session {
  socket: string;
  client: QmpClient;
  /** Detaches the session's listeners from the shared connection. */
  detach(): void;
}

const sessions = new Map<number, Session>();
let nextSession = 1;
let cleanupRegistered = false;

function session(id: number): QmpClient {
  const s = sessions.get(id);
  if (!s) throw new FerryError('QMP_CLOSED', `QMP session ${id} is closed`);
  return s.client;
}

function endSession(id: number): void {
  const s = sessions.get(id);
  if (!s) return;
  sessions.delete(id);
  s.detach();
  releaseQmp(s.socket, s.client);
}

export const qmpHandlers = {
  'qmp.open': async (p: { socket: string; timeoutMs?: number }, ctx: HandlerContext) => {
    if (!cleanupRegistered) {
      cleanupRegistered = true;
      ctx.onClose(() => {
        for (const id of [...sessions.keys()]) endSession(id);
      });
    }
    const client = await acquireQmp(p.socket, p.timeoutMs ?? 10_000);
    const id = nextSession++;
    const onEvent = (event: QmpEvent): void => ctx.notify('qmp.event', { session: id, event });
    const onClose = (e: FerryError): void => {
      if (!sessions.has(id)) return;
      sessions.delete(id);
      ctx.notify('qmp.closed', { session: id, message: e.message });
    };
    client.on('event', onEvent);
    client.on('close', onClose);
    sessions.set(id, {
      socket: p.socket,
      client,
      detach: () => {
        client.off('event', onEvent);
        client.off('close', onClose);
      },
    });
    return { session: id, greeting: client.greeting! };
  },

  'qmp.execute': async (p: { session: number; command: string; arguments?: Record<string, unknown>; timeoutMs?: number }): Promise<unknown> => {
    return session(p.session).execute(p.command, p.arguments, { timeoutMs: p.timeoutMs });
  },

  'qmp.close': async (p: { session: number }): Promise<void> => {
    endSession(p.session);
  },
};
