import assert from 'node:assert/strict';
/**
 * A command in a terminal, as a user runs it: a tmux pane of a chosen size
 * on a tmux server of the test's own (its own socket), and the screen as
 * the user sees it. For the tests of the live views.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/util/exec.js';

const EXIT_MARK = '__ferry_test_exit__';

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Columns a screen line takes: one per code point (tmux counts the views' block characters as one). */
export function width(line: string): number {
  return [...line].length;
}

/**
 * Where a live view stands on a screen: the indexes of its overall lines and
 * of its bar lines (any line with bar glyphs), each of which must be a bar
 * line and nothing else.
 */
export function liveLines(screen: string[], overallLine: RegExp, barLine: RegExp, show: string): { overall: number[]; bars: number[] } {
  const overall = screen.flatMap((l, i) => (overallLine.test(l) ? [i] : []));
  const bars = screen.flatMap((l, i) => (/[█░]/.test(l) ? [i] : []));
  for (const i of bars) assert.match(screen[i]!, barLine, `only the bar on a bar's line (${show})`);
  return { overall, bars };
}

export class TmuxPane {
  private constructor(
    private readonly dir: string,
    private readonly socket: string,
  ) {}

  /**
   * Starts `argv` in a new pane `columns` x `rows`, with `env` added to its
   * environment. The pane stays after the command ends, its exit code shown.
   */
  static async start(argv: string[], options: { columns: number; rows?: number; env?: Record<string, string> }): Promise<TmuxPane> {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tmux-'));
    const pane = new TmuxPane(dir, join(dir, 'socket'));
    const command = `${argv.map(shellQuote).join(' ')}; echo "${EXIT_MARK} $?"; exec sleep 3600`;
    // The server takes its environment from this first client: the pane's command gets env.
    await pane.tmux(['-f', '/dev/null', 'new-session', '-d', '-s', 'view', '-x', String(options.columns), '-y', String(options.rows ?? 40), command], { ...options.env, TMUX: '' });
    return pane;
  }

  private async tmux(args: string[], env?: Record<string, string>): Promise<string> {
    return (await run('tmux', ['-S', this.socket, ...args], { env, timeoutMs: 10_000 })).stdout;
  }

  /** The screen's lines, a line that wrapped joined into one (so that one too wide shows), trailing blanks dropped. */
  async screen(): Promise<string[]> {
    const out = await this.tmux(['capture-pane', '-p', '-J', '-t', 'view']);
    const lines = out.split('\n').map((l) => l.trimEnd());
    while (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  async resize(columns: number): Promise<void> {
    await this.tmux(['resize-window', '-t', 'view', '-x', String(columns)]);
  }

  /** The command's exit code, once it has ended; undefined while it runs. */
  async exitCode(): Promise<number | undefined> {
    const m = new RegExp(`^${EXIT_MARK} (\\d+)$`, 'm').exec((await this.screen()).join('\n'));
    return m ? Number(m[1]) : undefined;
  }

  /** Takes the screen every `everyMs` until the command ends (or `timeoutMs` passes); resolves with each screen taken and the exit code. */
  async watch(everyMs: number, timeoutMs: number, onScreen?: (screen: string[], n: number) => Promise<void> | void): Promise<{ screens: string[][]; code: number }> {
    const screens: string[][] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      screens.push(screen);
      await onScreen?.(screen, screens.length - 1);
      const code = await this.exitCode();
      if (code !== undefined) return { screens, code };
      if (Date.now() > deadline) throw new Error(`the command did not end within ${timeoutMs} ms; its screen:\n${screen.join('\n')}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** Ends the pane's server (and the command, if it still runs). */
  async close(): Promise<void> {
    await this.tmux(['kill-server']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The exit marker line, which is the test's, not the command's. */
  static isExitMark(line: string): boolean {
    return line.startsWith(EXIT_MARK);
  }
}
