/**
 * Settling a live migration that did not end normally: a phase failed, an
 * agent or the link to it was lost, or `ferry recover` found it unfinished.
 * The target decides: if its incoming migration completed, it owns the VM
 * and the source stops; otherwise the target's leftovers are destroyed and
 * the VM runs on at the source. Both hosts' agents act from what they
 * recorded on their own disks, so this works from a fresh controller too.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { SourceResolution } from './host/source-guard.js';
import type { TargetOutcome } from './host/target-guard.js';

export interface Settlement {
  /** Who owns the VM now: the target (`committed`), the source (`aborted`, or `none` when nothing had begun), or nobody (`died`). */
  outcome: TargetOutcome;
  source: SourceResolution;
  /** What went otherwise than planned on the way (a cancel QEMU was slow to finish, say). */
  notes?: string[];
  /** How long each side took to settle: a slow settling shows where it waited. */
  ms?: Record<string, number>;
}

/**
 * Brings migration `id` to one owner. The source first stops a migration
 * that has not reached the switch-over (so the target's fate is sealed),
 * then the target says whether it committed, then the source follows.
 */
export async function settleMigration(id: string, source: AgentClient, target: AgentClient): Promise<Settlement> {
  const t0 = performance.now();
  await source.call('migration.source.cancel', { id });
  const t1 = performance.now();
  const { outcome } = await target.call('migration.target.resolve', { id, abort: true });
  const t2 = performance.now();
  const verdict = outcome === 'committed' || outcome === 'died' ? outcome : 'aborted';
  const { resolution, notes } = await source.call('migration.source.resolve', { id, verdict });
  await target.call('migration.target.release', { id });
  const ms = (from: number, to: number): number => Math.round(to - from);
  return { outcome, source: resolution, notes, ms: { source_cancel: ms(t0, t1), target_resolve: ms(t1, t2), source_resolve: ms(t2, performance.now()) } };
}
