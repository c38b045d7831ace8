/**
 * QMP sessions held by the agent on behalf of the controller: the monitor
 * socket is on this host, so the agent speaks QMP and forwards replies and
 * events. Sessions close when the controller goes away.
 */
import { QmpClient } from '../../qmp/client.js';
import { FerryError } from '../../util/errors.js';
import type { HandlerContext } from '../context.js';

const sessions = new Map<number, QmpClient>();
let nextSession = 1;
let cleanupRegistered = false;

function session(id: number): QmpClient {
  const s = sessions.get(id);
  if (!s) throw new FerryError('QMP_CLOSED', `QMP session ${id} is closed`);
  return s;
}

export const qmpHandlers = {
  'qmp.open': async (p: { socket: string; timeoutMs?: number }, ctx: HandlerContext) => {
    if (!cleanupRegistered) {
      cleanupRegistered = true;
      ctx.onClose(() => {
        for (const s of sessions.values()) s.close();
        sessions.clear();
      });
    }
    const client = await QmpClient.connect(p.socket, { timeoutMs: p.timeoutMs ?? 10_000 });
    const id = nextSession++;
    sessions.set(id, client);
    client.on('event', (event) => ctx.notify('qmp.event', { session: id, event }));
    client.on('close', (e: FerryError) => {
      sessions.delete(id);
      ctx.notify('qmp.closed', { session: id, message: e.message });
    });
    return { session: id, greeting: client.greeting! };
  },

  'qmp.execute': async (p: { session: number; command: string; arguments?: Record<string, unknown>; timeoutMs?: number }): Promise<unknown> => {
    return session(p.session).execute(p.command, p.arguments, { timeoutMs: p.timeoutMs });
  },

  'qmp.close': async (p: { session: number }): Promise<void> => {
    sessions.get(p.session)?.close();
    sessions.delete(p.session);
  },
};
