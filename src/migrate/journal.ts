/**
 * The migration journal on the controlling machine: one JSON-lines file per
 * migration, a line per step, so an operator (and `ferry history`) can see
 * what happened and how each migration ended.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { text } from '../util/text.js';

export function stateDir(): string {
  return process.env.FERRY_STATE_DIR ?? join(homedir(), '.local/state/ferry');
}

/**
 * For fault tests: the controller stops itself (SIGSTOP) right after writing
 * this step the first time, so that a test can strike at exactly that
 * instant (a step written once per disk holds at the first disk).
 */
let holdAt = process.env.FERRY_JOURNAL_HOLD;

/** A journal line's step as fault tests name it: `phase:NAME` for a phase's start, else its step. */
export function journalStep(entry: JournalEntry): string {
  return entry.step === 'phase' ? `phase:${String(entry.phase)}` : entry.step;
}

export interface JournalEntry {
  time: string;
  step: string;
  [key: string]: unknown;
}

export class Journal {
  readonly id: string;
  readonly path: string;

  constructor(kind: string, subject: string, id?: string) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    this.id = id ?? `${stamp}-${kind}-${subject}-${process.pid}`;
    const dir = join(stateDir(), 'journal');
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${this.id}.jsonl`);
  }

  /** The journal of an earlier migration, to append to (`ferry recover`). */
  static reopen(id: string): Journal {
    return new Journal('', '', id);
  }

  entries(): JournalEntry[] {
    return readEntries(this.path);
  }

  /** Appends synchronously: the line must be on disk even if ferry dies next. */
  record(step: string, data: Record<string, unknown> = {}): void {
    const entry: JournalEntry = { time: new Date().toISOString(), step, ...data };
    appendFileSync(this.path, JSON.stringify(entry) + '\n');
    if (holdAt !== undefined && journalStep(entry) === holdAt) {
      holdAt = undefined;
      process.kill(process.pid, 'SIGSTOP');
    }
  }
}

export interface HistoryItem {
  id: string;
  started: string;
  /** live, warm or cold once the move had chosen; migrate before. */
  kind: string;
  vm: string;
  from?: string;
  to?: string;
  status: string;
  error?: string;
  downtimeMs?: number;
  totalMs?: number;
  /** For a migration that ended without an end record: the command that settles it. */
  settleWith?: string;
  /** After a recovery: the host the VM was found running on. */
  runsOn?: string;
  /** The driver that moved it (qemu when the journal predates drivers). */
  driver: string;
}

function isJournalEntry(value: unknown): value is JournalEntry {
  return typeof value === 'object' && value !== null && 'step' in value && typeof value.step === 'string' && 'time' in value && typeof value.time === 'string';
}

/** The entries of migration `id`'s journal. */
export function journalEntries(id: string): JournalEntry[] {
  return readEntries(join(stateDir(), 'journal', `${id}.jsonl`));
}

function readEntries(path: string): JournalEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l): unknown => {
      try {
        return JSON.parse(l);
      } catch {
        return undefined; // a line cut short by a crash
      }
    })
    .filter(isJournalEntry);
}

export function readHistory(): HistoryItem[] {
  const dir = join(stateDir(), 'journal');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
  } catch {
    return [];
  }
  return files.sort().map((f) => {
    const entries = readEntries(join(dir, f));
    const start = entries.find((e) => e.step === 'start');
    const end = [...entries].reverse().find((e) => e.step === 'end');
    return {
      id: f.replace(/\.jsonl$/, ''),
      started: start?.time ?? '',
      kind: text(entries.find((e) => e.step === 'mode')?.mode ?? start?.kind ?? 'migrate'),
      vm: text(start?.vm),
      from: start?.from as string | undefined,
      to: start?.to as string | undefined,
      // No end line: ferry itself was killed mid-way.
      status: text(end?.status ?? 'interrupted'),
      settleWith: end ? undefined : `ferry recover ${f.replace(/\.jsonl$/, '')}`,
      runsOn: end?.runs_on as string | undefined,
      driver: text(entries.find((e) => e.step === 'driver')?.driver ?? 'qemu'),
      error: end?.error as string | undefined,
      downtimeMs: end?.downtime_ms as number | undefined,
      totalMs: end?.total_ms as number | undefined,
    };
  });
}
