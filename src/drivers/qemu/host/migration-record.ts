/**
 * What a migration has made or changed on one host, kept on that host's disk
 * so that whichever agent runs there next (the same one after its controller
 * vanished, a new one after it was killed, `ferry recover`) knows what to
 * undo or keep without asking the controller.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../../util/exec.js';

export function recordDir(): string {
  return process.env.FERRY_MIGRATION_DIR ?? '/var/lib/ferry/migrations';
}

/**
 * The target's side. `phase` is the ownership of the VM as seen from here:
 * until the incoming migration completes the source owns it and everything
 * listed is ferry's to remove; from `committed` on, the target owns it.
 */
export interface TargetRecord {
  id: string;
  role: 'target';
  vm: string;
  /** The agent process watching over this side. */
  guardPid: number;
  /** That agent acted alone on its outcome and let go of the VM: another agent may take over. */
  settled?: boolean;
  phase: 'preparing' | 'incoming' | 'committed' | 'aborted' | 'died';
  /** The incoming QEMU, once started. */
  pid?: number;
  qmpSocket?: string;
  /** Files ferry created here: removed unless the target commits. */
  files: string[];
  /** LVs ferry created here (/dev/VG/LV): deactivated and removed unless the target commits. */
  lvs?: Array<{ vg: string; lv: string }>;
  /** Where the source's agent asks for the outcome when no controller tells it. */
  beacon?: { address: string; port: number };
  token: string;
}

/** The source's side: what ferry added to the running VM, and the settings it changed. */
export interface SourceRecord {
  id: string;
  role: 'source';
  vm: string;
  guardPid: number;
  settled?: boolean;
  phase: 'mirroring' | 'completed' | 'resumed' | 'stopped';
  pid: number;
  qmpSocket: string;
  nbdNodes: string[];
  jobs: string[];
  /**
   * A warm move's cut-over: the disks were pre-copied, so at the pause the
   * guard runs these (one backup job per disk, of the blocks written since
   * the last pass) instead of completing mirrors, and waits for `jobs`.
   */
  finalPass?: { actions: Array<{ type: string; data: Record<string, unknown> }>; jobs: string[] };
  /** Migration capabilities and parameters as they were before ferry set its own. */
  capabilities?: Array<{ capability: string; state: boolean }>;
  parameters?: Record<string, unknown>;
  beacon?: { address: string; port: number; token: string };
}

export type MigrationRecord = TargetRecord | SourceRecord;

function recordPath(id: string, role: MigrationRecord['role']): string {
  return join(recordDir(), `${id}.${role}.json`);
}

/** Written whole and renamed into place: a reader never sees half a record. */
export function saveRecord(record: MigrationRecord): void {
  mkdirSync(recordDir(), { recursive: true });
  const path = recordPath(record.id, record.role);
  writeFileSync(`${path}.tmp`, JSON.stringify(record) + '\n');
  renameSync(`${path}.tmp`, path);
}

function isRecord(value: unknown): value is MigrationRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.id === 'string' && typeof r.vm === 'string' && typeof r.guardPid === 'number' && (r.role === 'source' || r.role === 'target');
}

function readRecord(path: string): MigrationRecord | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined; // absent, or being replaced
  }
}

export function loadRecord<R extends MigrationRecord['role']>(id: string, role: R): Extract<MigrationRecord, { role: R }> | undefined {
  const record = readRecord(recordPath(id, role));
  return record && hasRole(record, role) ? record : undefined;
}

function hasRole<R extends MigrationRecord['role']>(record: MigrationRecord, role: R): record is Extract<MigrationRecord, { role: R }> {
  return record.role === role;
}

export function removeRecord(id: string, role: MigrationRecord['role']): void {
  rmSync(recordPath(id, role), { force: true });
}

export function listRecords(): MigrationRecord[] {
  let names: string[];
  try {
    names = readdirSync(recordDir()).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => readRecord(join(recordDir(), n))).filter((r): r is MigrationRecord => r !== undefined);
}

/**
 * The record of migration `id`'s `role` side for this agent to act on. While
 * another live agent on this host still watches it (its controller's link
 * dropped) and has not let go, that agent finishes first.
 */
export async function recordToTakeOver<R extends MigrationRecord['role']>(id: string, role: R): Promise<Extract<MigrationRecord, { role: R }> | undefined> {
  let record = loadRecord(id, role);
  while (record && record.guardPid !== process.pid && processAlive(record.guardPid) && !record.settled) {
    await new Promise((r) => setTimeout(r, 200));
    record = loadRecord(id, role);
  }
  return record;
}
