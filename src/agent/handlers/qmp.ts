/**
 * QMP sessions held by the agent on behalf of the controller: the monitor
 * socket is on this host, so the agent speaks QMP and forwards replies and
 * events. Sessions close when the controller goes away.
 */
import { QmpClient, type QmpEvent } from '../../qmp/client.js';
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

  /**
   * Arms the switch-over on the source's host: when QEMU pauses at
   * pre-switchover, complete every mirror and let the migration go on at
   * once, here, with no round trip to the controller (each one would add to
   * the guest's pause). The outcome comes back as a 'qmp.switchover'
   * notification; on any error the migration is left paused for the
   * controller to cancel.
   */
  'qmp.armSwitchover': async (p: { session: number; jobs: string[] }, ctx: HandlerContext): Promise<void> => {
    const client = session(p.session);
    const onEvent = (e: QmpEvent): void => {
      if (e.event !== 'MIGRATION') return;
      if (e.data.status === 'pre-switchover') {
        client.off('event', onEvent);
        void switchOver(client, p.jobs, e.timestampMs).then((result) => ctx.notify('qmp.switchover', { session: p.session, ...result }));
      } else if (e.data.status === 'failed' || e.data.status === 'cancelled') {
        client.off('event', onEvent);
      }
    };
    client.on('event', onEvent);
  },
};

export interface SwitchoverResult {
  ok: boolean;
  error?: string;
  /** Bytes each mirror copied, by job id. */
  copied: Record<string, number>;
  /** Milliseconds from the pause to migrate-continue being accepted. */
  pausedToContinueMs: number;
}

async function switchOver(client: QmpClient, jobs: string[], pausedAtMs: number): Promise<SwitchoverResult> {
  const copied: Record<string, number> = {};
  try {
    const completed = jobs.map((job) => client.waitForEvent('BLOCK_JOB_COMPLETED', (e) => e.data.device === job, 30_000));
    await Promise.all(jobs.map((job) => client.execute('block-job-cancel', { device: job })));
    for (const e of await Promise.all(completed)) {
      if (e.data.error) throw new FerryError('MIGRATION_FAILED', `Disk mirror ${String(e.data.device)} failed at the switch-over: ${String(e.data.error)}`);
      copied[String(e.data.device)] = Number(e.data.offset ?? 0);
    }
    await client.execute('migrate-continue', { state: 'pre-switchover' });
    return { ok: true, copied, pausedToContinueMs: Date.now() - pausedAtMs };
  } catch (e) {
    return { ok: false, error: (e as Error).message, copied, pausedToContinueMs: Date.now() - pausedAtMs };
  }
}
