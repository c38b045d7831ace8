/**
 * One QMP connection per monitor socket in the agent, shared by whoever
 * needs it: QEMU serves a single client at a time, and a migration's guard
 * must keep watching the VM after the controller's session has closed.
 */
import { QmpClient } from '../../../qmp/client.js';

interface PooledClient {
  client: Promise<QmpClient>;
  resolved?: QmpClient;
  users: number;
}

const pool = new Map<string, PooledClient>();

/** The monitor at `socket`, connected once; give it back with `releaseQmp`. */
export async function acquireQmp(socket: string, timeoutMs = 10_000): Promise<QmpClient> {
  let entry = pool.get(socket);
  if (entry) {
    const client = await entry.client.catch(() => undefined);
    if (client && !client.closed) {
      entry.users++;
      return client;
    }
    pool.delete(socket);
  }
  entry = { client: QmpClient.connect(socket, { timeoutMs }), users: 1 };
  pool.set(socket, entry);
  const pooled = entry;
  try {
    const client = await pooled.client;
    pooled.resolved = client;
    client.setMaxListeners(0);
    client.once('close', () => {
      if (pool.get(socket) === pooled) pool.delete(socket);
    });
    return client;
  } catch (e) {
    if (pool.get(socket) === pooled) pool.delete(socket);
    throw e;
  }
}

/** Drops one use of the monitor at `socket`; the last one closes the connection. */
export function releaseQmp(socket: string, client: QmpClient): void {
  const entry = pool.get(socket);
  if (!entry || entry.resolved !== client) return client.close();
  if (--entry.users > 0) return;
  pool.delete(socket);
  client.close();
}
