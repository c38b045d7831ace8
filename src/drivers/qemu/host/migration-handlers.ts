/**
 * The agent's methods for a live migration's two sides. Each side's guard
 * lives in the agent on its host and outlives the controller: when the
 * controller (or the link to it) goes away, every guard brings its side to
 * the right end alone before the agent exits.
 */
import type { HandlerContext } from '../../../agent/context.js';
import { FerryError } from '../../../util/errors.js';
import { listRecords, type MigrationRecord, type SourceRecord } from './migration-record.js';
import { startQemu } from './qemu-handlers.js';
import { SourceGuard, type SourceOutcome, type SourceResolution, type SourceVerdict } from './source-guard.js';
import { TargetGuard, type TargetOutcome } from './target-guard.js';

let watching = false;

/** Once per agent: when the controller goes, each guard finishes alone (the agent waits for them). */
function watchController(ctx: HandlerContext): void {
  if (watching) return;
  watching = true;
  ctx.onClose(async () => {
    await Promise.all([...TargetGuard.all().map((g) => g.controllerLost()), ...SourceGuard.all().map((g) => g.controllerLost())]);
  });
}

async function targetGuard(id: string): Promise<TargetGuard> {
  const guard = await TargetGuard.find(id);
  if (!guard) throw new FerryError('NOT_FOUND', `No migration ${id} on this host's target side`);
  return guard;
}

async function sourceGuard(id: string): Promise<SourceGuard> {
  const guard = await SourceGuard.find(id);
  if (!guard) throw new FerryError('NOT_FOUND', `No migration ${id} on this host's source side`);
  return guard;
}

export const migrationHandlers = {
  /** Opens the target's record before anything is made there, so that all of it can be undone. */
  'migration.target.begin': async (p: { id: string; vm: string; token: string }, ctx: HandlerContext): Promise<void> => {
    watchController(ctx);
    TargetGuard.begin(p);
  },

  /** Lists what the target side made (files, LVs, the incoming QEMU). */
  'migration.target.claim': async (p: { id: string; files?: string[]; lvs?: Array<{ vg: string; lv: string }>; pid?: number; qmpSocket?: string }): Promise<void> => {
    (await targetGuard(p.id)).claim(p);
  },

  /** Starts the incoming QEMU under the migration's guard (never once it has settled), its pid claimed. */
  'migration.target.start': async (p: { id: string; argv: string[]; pidfile: string }): Promise<{ pid: number }> => (await targetGuard(p.id)).startIncoming(() => startQemu(p.argv, p.pidfile)),

  /** The incoming QEMU waits: watch it for the commit point and answer the source's agent on `address`. */
  'migration.target.incoming': async (p: { id: string; address: string }): Promise<{ port: number }> => {
    return (await targetGuard(p.id)).incoming(p.address);
  },

  /** Who owns the VM, acted upon: committed (kept, running), aborted (destroyed), died, or still incoming after `waitMs`. */
  'migration.target.resolve': async (p: { id: string; abort: boolean; waitMs?: number }, ctx: HandlerContext): Promise<{ outcome: TargetOutcome }> => {
    watchController(ctx);
    const guard = await TargetGuard.find(p.id);
    if (!guard) return { outcome: 'none' };
    return { outcome: await guard.resolve(p) };
  },

  /** The controller has what it needs: forget the target's record. */
  'migration.target.release': async (p: { id: string }): Promise<void> => {
    (await TargetGuard.find(p.id))?.release();
  },

  /** Records what the mirror adds to the source QEMU and arms the switch-over. */
  'migration.source.begin': async (p: Omit<SourceRecord, 'role' | 'guardPid' | 'phase'>, ctx: HandlerContext): Promise<void> => {
    watchController(ctx);
    await SourceGuard.begin(p);
  },

  /** For a capped migration: a relay, held to the cap, for the disks' NBD connections to the target. */
  'migration.source.relay': async (p: { id: string; address: string; to: { host: string; port: number }; bytesPerSecond: number }): Promise<{ port: number }> => ({
    port: await (await sourceGuard(p.id)).relayTo(p),
  }),

  'migration.source.outcome': async (p: { id: string }): Promise<SourceOutcome> => (await sourceGuard(p.id)).outcome(),

  /** Stops the migration if it has not reached the switch-over; returns QEMU's status before. */
  'migration.source.cancel': async (p: { id: string }, ctx: HandlerContext): Promise<{ status: string }> => {
    watchController(ctx);
    const guard = await SourceGuard.find(p.id);
    return { status: guard ? await guard.cancel() : 'none' };
  },

  'migration.source.resolve': async (p: { id: string; verdict: SourceVerdict }, ctx: HandlerContext): Promise<{ resolution: SourceResolution; notes?: string[] }> => {
    watchController(ctx);
    const guard = await SourceGuard.find(p.id);
    if (!guard) return { resolution: 'none' };
    const resolution = await guard.resolve(p.verdict);
    return { resolution, notes: guard.notes.length ? guard.notes : undefined };
  },

  /** Every migration record on this host (for `ferry recover` and tests). */
  'migration.records': async (): Promise<MigrationRecord[]> => listRecords(),
};
