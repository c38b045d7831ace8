/**
 * `ferry recover` for a cold move of a QEMU VM: if it runs on the target,
 * it stays there; otherwise a VM ferry powered off runs again on the
 * source, from the command line journaled when it was found. What was
 * copied stays on the target: the same command continues into it.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { coldProgress } from '../cold-journal.js';
import type { Recovery } from '../driver.js';

export async function recoverQemuCold(vmName: string, source: AgentClient, target: AgentClient, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<Recovery> {
  const progress = coldProgress(journal);
  const runs = async (agent: AgentClient): Promise<boolean> => (await agent.call('qemu.list', undefined)).some((p) => p.name === vmName);
  const found = { source: (await runs(source)) ? 'running' : null, target: (await runs(target)) ? 'running' : null };
  if (found.target) return { found, settlement: { outcome: 'committed', source: found.source ? 'running' : 'stopped' } };
  if (found.source || !progress.stoppedSource) return { found };
  if (!progress.sourceArgv) return { found, settlement: { outcome: 'aborted', source: 'not running: start it by hand, its command line is not in the journal' } };
  await source.call('qemu.start', { argv: progress.sourceArgv, pidfile: `/run/ferry/${vmName}.pid` });
  return { found, settlement: { outcome: 'aborted', source: 'started again' } };
}
