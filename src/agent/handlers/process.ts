/** Processes on the agent's host, whatever hypervisor runs there. */
import { spawn } from 'node:child_process';
import { processesHolding } from '../../storage/usage.js';

export const processHandlers = {
  'process.holding': async (p: { path: string }): Promise<{ pids: number[] }> => ({ pids: (await processesHolding(p.path)).map((h) => h.pid) }),

  /** Spawns a long-lived helper detached from the agent (not used for QEMU). */
  'process.spawnDetached': async (p: { argv: string[] }): Promise<{ pid: number }> => {
    const child = spawn(p.argv[0]!, p.argv.slice(1), { detached: true, stdio: 'ignore' });
    child.unref();
    return { pid: child.pid ?? -1 };
  },
};
