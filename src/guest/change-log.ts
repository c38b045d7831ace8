/**
 * Every change a fix makes to a guest goes through here: shown as a unified
 * diff, the original kept beside the file (fstab.ferry-orig, never
 * overwritten so the first original survives repeated fixes), and nothing
 * written on a dry run.
 */
import { copyFile, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/exec.js';
import { guestPath, readGuestFile } from './guest-files.js';

export interface Change {
  operation: string;
  file: string;
  kind: 'edit' | 'remove' | 'command';
  /** Unified diff for edits; the command line for commands. */
  diff: string;
  backup?: string;
}

export const BACKUP_SUFFIX = '.ferry-orig';

export class ChangeLog {
  readonly changes: Change[] = [];
  operation = '';
  /** Texts written so far, so later operations see earlier edits even on a dry run. */
  private readonly pending = new Map<string, string>();

  constructor(
    readonly root: string,
    readonly dryRun: boolean,
  ) {}

  /** A guest file's text as the operations so far left it. */
  async read(file: string): Promise<string | undefined> {
    return this.pending.get(file) ?? (await readGuestFile(this.root, file));
  }

  /** Replaces a guest file's text; no-op when unchanged. */
  async edit(file: string, next: string): Promise<void> {
    const current = (await this.read(file)) ?? '';
    if (current === next) return;
    this.pending.set(file, next);
    const diff = await unifiedDiff(file, current, next);
    const host = await guestPath(this.root, file);
    let backup: string | undefined;
    if (!this.dryRun) {
      backup = await this.keepOriginal(host, file);
      const st = await stat(host).catch(() => undefined);
      const tmp = `${host}.ferry-new`;
      await writeFile(tmp, next, { mode: st?.mode ?? 0o644 });
      await rename(tmp, host);
    } else {
      backup = `${file}${BACKUP_SUFFIX}`;
    }
    this.changes.push({ operation: this.operation, file, kind: 'edit', diff, backup });
  }

  /** Removes a guest file, keeping it as FILE.ferry-orig. */
  async remove(file: string): Promise<void> {
    const host = await guestPath(this.root, file);
    const backup = `${file}${BACKUP_SUFFIX}`;
    if (!this.dryRun) await rename(host, `${host}${BACKUP_SUFFIX}`);
    this.changes.push({ operation: this.operation, file, kind: 'remove', diff: `removed ${file} (kept as ${backup})`, backup });
  }

  /** Records (and, unless dry-run, runs through `exec`) a command run inside the guest. */
  async command(description: string, exec: () => Promise<void>): Promise<void> {
    if (!this.dryRun) await exec();
    this.changes.push({ operation: this.operation, file: '', kind: 'command', diff: description });
  }

  private async keepOriginal(host: string, file: string): Promise<string | undefined> {
    const backup = `${host}${BACKUP_SUFFIX}`;
    if (await stat(host).catch(() => undefined)) {
      if (!(await stat(backup).catch(() => undefined))) await copyFile(host, backup);
      return `${file}${BACKUP_SUFFIX}`;
    }
    return undefined;
  }
}

/** `diff -u` of two texts, labelled with the guest path. */
export async function unifiedDiff(file: string, before: string, after: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-diff-'));
  try {
    await writeFile(join(dir, 'a'), before);
    await writeFile(join(dir, 'b'), after);
    const r = await run('diff', ['-u', '--label', `a${file}`, '--label', `b${file}`, join(dir, 'a'), join(dir, 'b')], { allowFailure: true });
    return r.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
