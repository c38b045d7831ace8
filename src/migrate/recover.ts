/**
 * `ferry recover`: brings migrations that ended without an end record (the
 * controller was killed, the machine running it went down) to one owner.
 * The journal names the hosts; each host's agent reports and acts on what
 * its own record says; the journal is then closed with what was done.
 */
import type { Settlement } from '../drivers/driver.js';
import { liveAgent } from '../hosts/live-agent.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { findHost, type Inventory } from '../hosts/inventory.js';
import { asFerryError, FerryError } from '../util/errors.js';
import { driverNamed } from './drivers.js';
import { Journal, journalEntries, readHistory, type HistoryItem } from './journal.js';

export interface RecoveryReport {
  id: string;
  vm: string;
  from: string;
  to: string;
  /** `nothing-to-do`: neither host held anything of the migration; `settled`: ferry acted; `failed`: it could not. */
  status: 'nothing-to-do' | 'settled' | 'failed';
  /** What the hosts held of the migration before the recovery. */
  records: { source: string | null; target: string | null };
  settlement?: Settlement;
  /** Where the VM runs now, as far as ferry can see. */
  runs_on: string[];
  error?: { code: string; message: string; hint?: string };
}

/** The unfinished migrations `selector` (a migration id or a VM name; all when undefined) names. */
export function unfinishedMigrations(selector?: string): HistoryItem[] {
  const open = readHistory().filter((h) => h.status === 'interrupted');
  if (selector === undefined) return open;
  const chosen = open.filter((h) => h.id === selector || h.vm === selector);
  if (chosen.length) return chosen;
  const known = readHistory().find((h) => h.id === selector || h.vm === selector);
  if (known) return [];
  throw new FerryError('NOT_FOUND', `No migration or VM named "${selector}" in the journal`, { hint: 'see "ferry history" for migration ids' });
}

export async function recoverMigration(item: HistoryItem, inventory: Inventory): Promise<RecoveryReport> {
  const report: RecoveryReport = { id: item.id, vm: item.vm, from: item.from ?? '', to: item.to ?? '', status: 'failed', records: { source: null, target: null }, runs_on: [] };
  const journal = Journal.reopen(item.id);
  const agents: AgentClient[] = [];
  try {
    if (!item.from || !item.to) throw new FerryError('NOT_FOUND', `The journal of ${item.id} does not name its hosts`);
    const source = await liveAgent(findHost(inventory, item.from));
    agents.push(source);
    const target = await liveAgent(findHost(inventory, item.to));
    agents.push(target);
    const driver = driverNamed(item.driver);
    const recovery = await driver.recover(item.id, item.vm, source, target, journalEntries(item.id));
    report.records = recovery.found;
    report.settlement = recovery.settlement;
    report.status = recovery.settlement ? 'settled' : 'nothing-to-do';
    for (const agent of [source, target]) {
      if ((await driver.listVms(agent)).some((v) => v.name === item.vm && v.state !== 'shut off')) report.runs_on.push(agent.host.name);
    }
    journal.record('recovered', { records: report.records, settlement: report.settlement, runs_on: report.runs_on });
    journal.record('end', { status: 'recovered', runs_on: report.runs_on.join(',') || undefined });
  } catch (e) {
    const err = asFerryError(e);
    report.error = { code: err.code, message: err.message, hint: err.hint ?? 'check that both hosts are reachable, then run "ferry recover" again' };
    journal.record('recover-failed', { code: err.code, error: err.message });
  } finally {
    for (const a of agents) a.close();
  }
  return report;
}
