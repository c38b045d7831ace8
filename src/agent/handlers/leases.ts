/**
 * Leases: what a migration created on a target host (a QEMU process, image
 * files) is destroyed by the agent itself if the controller vanishes before
 * releasing it, so a killed controller or a dropped ssh link leaves no
 * half-made VM behind.
 */
import { rm } from 'node:fs/promises';
import type { HandlerContext } from '../context.js';

interface Lease {
  pids: number[];
  files: string[];
}

const leases = new Map<string, Lease>();
let registered = false;

async function destroy(lease: Lease): Promise<void> {
  for (const pid of lease.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (lease.pids.length) await new Promise((r) => setTimeout(r, 200));
  for (const f of lease.files) await rm(f, { force: true }).catch(() => undefined);
}

export const leaseHandlers = {
  'lease.take': async (p: { id: string; pids?: number[]; files?: string[] }, ctx: HandlerContext): Promise<void> => {
    if (!registered) {
      registered = true;
      ctx.onClose(async () => {
        for (const l of leases.values()) await destroy(l);
        leases.clear();
      });
    }
    const l = leases.get(p.id) ?? { pids: [], files: [] };
    l.pids.push(...(p.pids ?? []));
    l.files.push(...(p.files ?? []));
    leases.set(p.id, l);
  },
  /** The migration succeeded: keep what the lease covers. */
  'lease.release': async (p: { id: string }): Promise<void> => {
    leases.delete(p.id);
  },
  /** Roll back now: kill and remove what the lease covers. */
  'lease.destroy': async (p: { id: string }): Promise<void> => {
    const l = leases.get(p.id);
    leases.delete(p.id);
    if (l) await destroy(l);
  },
};
