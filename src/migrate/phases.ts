/**
 * A migration as explicit phases, each able to undo itself (as Proxmox's
 * QemuMigrate has phase1/phase2/phase3 with their cleanups). When a phase
 * fails, the phases that completed are rolled back in reverse order.
 */
import { asFerryError, FerryError } from '../util/errors.js';
import type { Journal } from './journal.js';

export interface Phase {
  name: string;
  run(): Promise<void>;
  /** Undo what run() did (or the part it got to). Must be safe to call after a partial run. */
  rollback?(): Promise<void>;
}

export interface PhaseTimes {
  [phase: string]: number;
}

export interface PhaseRunResult {
  times: PhaseTimes;
  failedPhase?: string;
  error?: FerryError;
  rollbackErrors: FerryError[];
}

export async function runPhases(phases: readonly Phase[], journal: Journal, onPhase?: (name: string) => void): Promise<PhaseRunResult> {
  const times: PhaseTimes = {};
  const started: Phase[] = [];
  for (const phase of phases) {
    const t0 = performance.now();
    onPhase?.(phase.name);
    journal.record('phase', { phase: phase.name });
    started.push(phase);
    try {
      await phase.run();
      times[phase.name] = Math.round(performance.now() - t0);
      journal.record('phase-done', { phase: phase.name, ms: times[phase.name] });
    } catch (e) {
      times[phase.name] = Math.round(performance.now() - t0);
      const error = asFerryError(e, 'MIGRATION_FAILED');
      journal.record('phase-failed', { phase: phase.name, code: error.code, error: error.message });
      const rollbackErrors: FerryError[] = [];
      for (const p of started.reverse()) {
        if (!p.rollback) continue;
        journal.record('rollback', { phase: p.name });
        try {
          await p.rollback();
        } catch (re) {
          const rerr = asFerryError(re);
          rollbackErrors.push(rerr);
          journal.record('rollback-failed', { phase: p.name, error: rerr.message });
        }
      }
      return { times, failedPhase: phase.name, error, rollbackErrors };
    }
  }
  return { times, rollbackErrors: [] };
}
