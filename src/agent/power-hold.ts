/**
 * A cold move powers a VM off on its source. Until the controller releases
 * it (the target is about to start the VM), the agent that asked for the
 * power-off holds it: if the controller goes away, that agent alone starts
 * the VM again once its power-off has ended. The hold is also written down
 * on the host, naming the agent, so that a new agent (the first was killed,
 * or the link to it lost and found again) learns whether the VM is still in
 * someone's care: it waits for a living holder, and takes over from a dead
 * one. So exactly one agent starts the VM again, whoever disappears.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HandlerContext } from './context.js';
import { sleep } from '../util/abort.js';
import { processAlive } from '../util/exec.js';

/** What a hold does when it fires: waits for the power-off under way to end (by `deadline`), then starts the VM unless it runs. */
export type StartAgain = (deadline: number) => Promise<void>;

interface HoldRecord {
  /** The agent process holding the VM. */
  pid: number;
  /** Until when a power-off under way is waited for (epoch ms). */
  deadline: number;
}

/** Holds this agent keeps, by migration id. */
const held = new Set<string>();

function holdDir(): string {
  return process.env.FERRY_HOLD_DIR ?? '/run/ferry/holds';
}

function recordPath(id: string): string {
  return join(holdDir(), `${id}.json`);
}

function readRecord(id: string): HoldRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(id), 'utf8')) as HoldRecord;
  } catch {
    return undefined;
  }
}

/** Holds the VM of migration `id` for `waitMs` from now; `startAgain` runs if the controller goes away before `releasePowerHold`. */
export function holdPowerOff(id: string, waitMs: number, ctx: HandlerContext, startAgain: StartAgain): void {
  const record: HoldRecord = { pid: process.pid, deadline: Date.now() + waitMs };
  mkdirSync(holdDir(), { recursive: true });
  writeFileSync(recordPath(id), JSON.stringify(record));
  held.add(id);
  ctx.onClose(async () => {
    if (!held.delete(id)) return;
    try {
      await startAgain(record.deadline);
    } finally {
      rmSync(recordPath(id), { force: true });
    }
  });
}

/** The controller lets go: the VM is not to be started again here. */
export function releasePowerHold(id: string): void {
  held.delete(id);
  rmSync(recordPath(id), { force: true });
}

/**
 * Settles a hold whose agent may be gone: a living holder (another agent)
 * is waited for until it has acted; a dead one's hold is taken over here
 * and acted on. `none` when nothing holds the VM (never held, released, or
 * acted on already).
 */
export async function settlePowerHold(id: string, startAgain: StartAgain, options: { pollMs?: number } = {}): Promise<'none' | 'holder' | 'taken-over'> {
  const first = readRecord(id);
  if (!first) return 'none';
  if (first.pid !== process.pid && processAlive(first.pid)) {
    // Its holder acts once its own controller connection has closed: wait for it, a while past its deadline.
    for (let record = readRecord(id); record && processAlive(record.pid) && Date.now() < record.deadline + 60_000; record = readRecord(id)) await sleep(options.pollMs ?? 250);
    if (!readRecord(id)) return 'holder';
  }
  held.delete(id);
  try {
    await startAgain(first.deadline);
  } finally {
    rmSync(recordPath(id), { force: true });
  }
  return 'taken-over';
}
