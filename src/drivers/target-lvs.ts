/**
 * The LVs a migration made on its target, as its journal claimed them before
 * they were made: removed (deactivated, then lvremove) when the VM does not
 * end up there. Only those: an LV ferry did not make is never in the list.
 */
import type { AgentClient } from '../hosts/agent-client.js';
import { messageOf } from '../util/errors.js';

export interface ClaimedLv {
  vg: string;
  lv: string;
}

function isClaimedLv(value: unknown): value is ClaimedLv {
  return typeof value === 'object' && value !== null && typeof (value as ClaimedLv).vg === 'string' && typeof (value as ClaimedLv).lv === 'string';
}

/** The LVs the journal's `claimed` lines list. */
export function claimedLvs(journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): ClaimedLv[] {
  return journal.filter((e) => e.step === 'claimed').flatMap((e) => (Array.isArray(e.lvs) ? e.lvs.filter(isClaimedLv) : []));
}

/** Removes each LV nothing holds open on the target; returns their paths. */
export async function removeClaimedLvs(target: AgentClient, lvs: readonly ClaimedLv[], log: (message: string) => void): Promise<string[]> {
  const removed: string[] = [];
  for (const { vg, lv } of lvs) {
    const path = `/dev/${vg}/${lv}`;
    if (!(await target.call('volume.lv', { path }))) continue;
    const holders = await target.call('process.holding', { path }).catch(() => ({ pids: [] as number[] }));
    if (holders.pids.length) continue;
    await target
      .call('volume.removeLv', { vg, lv })
      .then(() => removed.push(path))
      .catch((e: unknown) => log(`could not remove logical volume ${vg}/${lv} on ${target.host.name}: ${messageOf(e)}`));
  }
  return removed;
}
