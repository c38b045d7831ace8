/**
 * What a warm move left on the source's QEMU when its controller went
 * away. The pre-copy's jobs and NBD nodes go (a job still running is
 * cancelled, which keeps the dirty bitmap exact for the next run). A guest
 * --reboot had powered off or stopped runs again, unless the VM was started
 * on the target: then this older copy stops. What the cut-over with state
 * left is the live move's, settled from the hosts' records.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { clearLeftovers } from '../block-passes.js';
import { RemoteQmp } from './remote-qmp.js';
import { runGuestAgain } from './guest-power.js';

type JournalEntries = ReadonlyArray<{ step: string; [key: string]: unknown }>;

export function isWarm(journal: JournalEntries): boolean {
  return journal.some((e) => e.step === 'mode' && e.mode === 'warm');
}

/** Returns what it did, in a word, or null when the source's QEMU held nothing of the move. */
export async function recoverQemuWarm(vmName: string, source: AgentClient, target: AgentClient, journal: JournalEntries): Promise<string | null> {
  const proc = (await source.call('qemu.list', undefined)).find((p) => p.name === vmName);
  if (!proc?.qmpSocket) return null;
  const qmp = await RemoteQmp.open(source, proc.qmpSocket);
  try {
    const disks = journal.find((e) => e.step === 'vm')?.disks;
    await clearLeftovers(
      qmp,
      (Array.isArray(disks) ? disks : []).map((_, index) => ({ index })),
    );
    const stopped = journal.some((e) => e.step === 'source-paused' || e.step === 'source-shut-down');
    if (!stopped || journal.some((e) => e.step === 'source-resumed')) return 'cleared';
    // The start may have begun without its end being journaled: then the target's own process list tells.
    const startBegan = journal.some((e) => e.step === 'phase' && e.phase === 'start');
    const startedOnTarget = journal.some((e) => e.step === 'committed' || e.step === 'target-started') || (startBegan && (await target.call('qemu.list', undefined)).some((p) => p.name === vmName));
    if (startedOnTarget) {
      await qmp.execute('quit').catch(() => undefined);
      return 'stopped';
    }
    await runGuestAgain(qmp);
    return 'resumed';
  } finally {
    await qmp.close().catch(() => undefined);
  }
}
