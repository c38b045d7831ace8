/**
 * The migration journal on the controlling machine: one JSON-lines file per
 * migration, a line per step, so an operator (and `ferry history`) can see
 * what happened and how each migration ended.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function stateDir(): string {
  return process.env.FERRY_STATE_DIR ?? join(homedir(), '.local/state/ferry');
}

export interface JournalEntry {
  time: string;
  step: string;
  [key: string]: unknown;
}

export class Journal {
  readonly id: string;
  readonly path: string;

  constructor(kind: string, subject: string) {
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    this.id = `${stamp}-${kind}-${subject}-${process.pid}`;
    const dir = join(stateDir(), 'journal');
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${this.id}.jsonl`);
  }

  /** Appends synchronously: the line must be on disk even if ferry dies next. */
  record(step: string, data: Record<string, unknown> = {}): void {
    const entry: JournalEntry = { time: new Date().toISOString(), step, ...data };
    appendFileSync(this.path, JSON.stringify(entry) + '\n');
  }
}

export interface HistoryItem {
  id: string;
  started: string;
  kind: string;
  vm: string;
  from?: string;
  to?: string;
  status: string;
  error?: string;
  downtimeMs?: number;
  totalMs?: number;
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
    const entries = readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l) as JournalEntry;
        } catch {
          return undefined;
        }
      })
      .filter((e): e is JournalEntry => !!e);
    const start = entries.find((e) => e.step === 'start');
    const end = [...entries].reverse().find((e) => e.step === 'end');
    return {
      id: f.replace(/\.jsonl$/, ''),
      started: start?.time ?? '',
      kind: String(start?.kind ?? 'migrate'),
      vm: String(start?.vm ?? ''),
      from: start?.from as string | undefined,
      to: start?.to as string | undefined,
      // No end line: ferry itself was killed mid-way.
      status: String(end?.status ?? 'interrupted'),
      error: end?.error as string | undefined,
      downtimeMs: end?.downtime_ms as number | undefined,
      totalMs: end?.total_ms as number | undefined,
    };
  });
}
