/**
 * Where a live view goes. On a terminal: lines redrawn in place (cursor up,
 * clear down), fitted to its width and redrawn when it is resized, with log
 * lines printed above them. Without one (a pipe, a log file, CI): a plain
 * status line every few seconds, and the log lines as they come.
 */
import { wrapWords } from './live-lines.js';

/** What a view draws and says; the output decides how and when it reaches the stream. */
export interface LiveOutput {
  /** The view's state changed: redraw soon (a terminal) or print a status line if one is due (a pipe). */
  refresh(): void;
  /** A line that stays: printed above the live lines on a terminal (broken at spaces to fit its width). */
  log(text: string): void;
  /** Draws the live lines a last time and leaves them; the stream is the caller's again. */
  stop(): void;
}

export interface LiveOutputOptions {
  /** The live lines for a terminal, none wider than `width` columns. */
  lines: (width: number) => string[];
  /** The status line for a pipe; undefined while there is nothing to report. */
  status(): string | undefined;
  /** Milliseconds between status lines on a pipe. Default: $FERRY_PROGRESS_INTERVAL_MS, else 2000. */
  intervalMs?: number;
  /** Put the time of day before each line on a pipe. */
  timestamps?: boolean;
}

/** A terminal gets the live lines, anything else the plain lines. */
export function createLiveOutput(stream: NodeJS.WriteStream, options: LiveOutputOptions): LiveOutput {
  return stream.isTTY ? new TerminalOutput(stream, options.lines) : new PlainOutput(stream, options);
}

/** An output that shows nothing (-q). */
export const silentOutput: LiveOutput = { refresh: () => undefined, log: () => undefined, stop: () => undefined };

/** The interval between plain status lines: FERRY_PROGRESS_INTERVAL_MS lets tests see them sooner. */
export function progressIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.FERRY_PROGRESS_INTERVAL_MS;
  const n = text ? Number(text) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : 2000;
}

const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const CLEAR_DOWN = '\x1b[J';

/** Rows that `lines`, each drawn on a row of its own, take once the terminal is `width` columns wide (terminals rewrap on resize). */
export function _rowsAfterReflow(lines: readonly string[], width: number): number {
  let rows = 0;
  for (const l of lines) rows += Math.max(1, Math.ceil([...l].length / Math.max(1, width)));
  return rows;
}

/**
 * Redraws the live lines in place on a terminal. The cursor rests at the
 * start of the row below them, so a redraw moves up over exactly the rows
 * they took, clears down, and writes logs then the new lines in one write.
 */
export class TerminalOutput implements LiveOutput {
  /** The lines on the screen now, below the logs. */
  private drawn: string[] = [];
  private lastDraw = -Infinity;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private cursorHidden = false;
  private readonly onResize = (): void => this.draw();
  private readonly onExit = (): void => this.showCursor();

  /**
   * @param lines the live lines for a width
   * @param minIntervalMs redraws closer than this wait (events may come far faster than eyes read)
   */
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly lines: (width: number) => string[],
    private readonly minIntervalMs = 100,
  ) {
    stream.on('resize', this.onResize);
    process.once('exit', this.onExit);
  }

  refresh(): void {
    if (this.stopped || this.timer) return;
    const wait = this.lastDraw + this.minIntervalMs - performance.now();
    if (wait <= 0) this.draw();
    else this.timer = setTimeout(() => this.draw(), wait);
  }

  log(text: string): void {
    if (this.stopped) this.stream.write(`${text}\n`);
    else this.draw([text]);
  }

  stop(): void {
    if (this.stopped) return;
    this.draw();
    this.stopped = true;
    this.stream.off('resize', this.onResize);
    process.off('exit', this.onExit);
    this.showCursor();
  }

  private draw(logs: string[] = []): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastDraw = performance.now();
    const width = this.stream.columns || 80;
    // One column spare: a line that fills the last one leaves some terminals
    // waiting to wrap, and the next line would start a row too low.
    const next = this.lines(Math.max(1, width - 1));
    let out = '';
    if (next.length && !this.cursorHidden) {
      out += HIDE_CURSOR;
      this.cursorHidden = true;
    }
    const rows = _rowsAfterReflow(this.drawn, width);
    if (rows) out += `\r\x1b[${rows}A${CLEAR_DOWN}`;
    for (const text of logs) for (const l of wrapWords(text, width - 1)) out += `${l}\n`;
    for (const l of next) out += `${l}\n`;
    if (out) this.stream.write(out);
    this.drawn = next;
  }

  private showCursor(): void {
    if (!this.cursorHidden) return;
    this.cursorHidden = false;
    this.stream.write(SHOW_CURSOR);
  }
}

/** Plain lines for a pipe: a status line at most every interval, log lines as they come. */
export class PlainOutput implements LiveOutput {
  private last = -Infinity;
  private readonly intervalMs: number;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly options: Pick<LiveOutputOptions, 'status' | 'intervalMs' | 'timestamps'>,
  ) {
    this.intervalMs = options.intervalMs ?? progressIntervalMs();
  }

  refresh(): void {
    const now = performance.now();
    if (now - this.last < this.intervalMs) return;
    const s = this.options.status();
    if (s === undefined) return;
    this.last = now;
    this.write(s);
  }

  log(text: string): void {
    this.write(text);
  }

  stop(): void {}

  private write(text: string): void {
    const t = this.options.timestamps ? `${new Date().toISOString().slice(11, 23)} ` : '';
    this.stream.write(`${t}${text}\n`);
  }
}
