import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { _rowsAfterReflow, createLiveOutput, PlainOutput, progressIntervalMs, TerminalOutput } from './live-output.js';

/** A terminal's stream as the output sees it: a width, 'resize' events, and what was written. */
class FakeTerminal extends EventEmitter {
  readonly isTTY = true;
  written = '';
  constructor(public columns: number) {
    super();
  }
  write(s: string): boolean {
    this.written += s;
    return true;
  }
  resize(columns: number): void {
    this.columns = columns;
    this.emit('resize');
  }
  /** What was written since the last call. */
  take(): string {
    const s = this.written;
    this.written = '';
    return s;
  }
}

/**
 * Plays what was written on a screen of `width` columns, the way a terminal
 * would: text wraps at the right edge, ESC[nA moves up, ESC[J clears down.
 */
function screen(output: string, width: number): string[] {
  const rows: string[] = [''];
  let row = 0;
  let col = 0;
  const put = (ch: string): void => {
    if (col >= width) {
      row++;
      col = 0;
    }
    while (rows.length <= row) rows.push('');
    const r = rows[row]!.padEnd(col);
    rows[row] = r.slice(0, col) + ch + r.slice(col + 1);
    col++;
  };
  for (let i = 0; i < output.length; i++) {
    const c = output[i]!;
    if (c === '\x1b') {
      // eslint-disable-next-line no-control-regex -- a terminal's escape sequences start with ESC
      const m = /^\x1b\[(\??)(\d*)([A-Za-z])/.exec(output.slice(i))!;
      i += m[0].length - 1;
      if (m[3] === 'A') row = Math.max(0, row - Number(m[2] || 1));
      else if (m[3] === 'J') {
        rows.length = row + 1;
        rows[row] = (rows[row] ?? '').slice(0, col);
      }
    } else if (c === '\r') col = 0;
    else if (c === '\n') {
      row++;
      col = 0;
      while (rows.length <= row) rows.push('');
    } else put(c);
  }
  return rows.filter((r, i) => r !== '' || i < rows.length - 1);
}

test('a terminal gets the live lines redrawn in place, and log lines above them', () => {
  const term = new FakeTerminal(40);
  let n = 0;
  const out = new TerminalOutput(term as unknown as NodeJS.WriteStream, (w) => [`overall ${n}`.padEnd(w, '.'), `bar ${n}`], 0);
  n = 1;
  out.refresh();
  n = 2;
  out.refresh();
  out.log('switched over: the VM runs on lab-b');
  n = 3;
  out.refresh();
  out.stop();
  const all = term.take();
  assert.ok(all.startsWith('\x1b[?25l'), 'the cursor is hidden while drawing');
  assert.ok(all.endsWith('\x1b[?25h'), 'and shown again at the end');
  assert.deepEqual(screen(all, 40), ['switched over: the VM runs on lab-b', `overall 3${'.'.repeat(30)}`, 'bar 3']);
});

test('the live lines are asked for one column less than the terminal has', () => {
  const term = new FakeTerminal(80);
  const widths: number[] = [];
  const out = new TerminalOutput(term as unknown as NodeJS.WriteStream, (w) => (widths.push(w), ['x']), 0);
  out.refresh();
  out.stop();
  assert.deepEqual([...new Set(widths)], [79]);
});

test('a resize redraws at the new width, erasing the old lines as the terminal rewrapped them', () => {
  const term = new FakeTerminal(120);
  const out = new TerminalOutput(term as unknown as NodeJS.WriteStream, (w) => ['o'.repeat(w), 'b'.repeat(Math.min(w, 100))], 0);
  out.refresh();
  term.take();
  term.resize(40);
  // Lines of 119 and 100 columns take 3 rows each at 40 columns.
  assert.ok(term.take().startsWith('\r\x1b[6A\x1b[J'));
  out.stop();
});

test('rows after a reflow count each line at least once', () => {
  assert.equal(_rowsAfterReflow(['', 'abc', 'a'.repeat(81)], 80), 4);
  assert.equal(_rowsAfterReflow(['█'.repeat(80)], 80), 1);
});

test('a refresh soon after a draw waits, and many refreshes make one draw', async () => {
  const term = new FakeTerminal(80);
  let draws = 0;
  const out = new TerminalOutput(term as unknown as NodeJS.WriteStream, () => (draws++, ['x']), 50);
  out.refresh();
  for (let i = 0; i < 10; i++) out.refresh();
  assert.equal(draws, 1);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(draws, 2);
  out.stop();
});

test('without a terminal: a status line at most every interval, log lines at once', () => {
  const written: string[] = [];
  const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
  let status: string | undefined;
  const out = new PlainOutput(stream, { status: () => status, intervalMs: 60_000 });
  out.refresh();
  status = 'first';
  out.refresh();
  status = 'second';
  out.refresh();
  out.log('a log line');
  assert.deepEqual(written, ['first\n', 'a log line\n']);
});

test('createLiveOutput picks plain lines for a pipe', () => {
  const stream = Object.assign(new EventEmitter(), { isTTY: false, write: () => true }) as unknown as NodeJS.WriteStream;
  assert.ok(createLiveOutput(stream, { lines: () => [], status: () => undefined }) instanceof PlainOutput);
});

test('FERRY_PROGRESS_INTERVAL_MS sets the interval of plain lines', () => {
  assert.equal(progressIntervalMs({}), 2000);
  assert.equal(progressIntervalMs({ FERRY_PROGRESS_INTERVAL_MS: '100' }), 100);
  assert.equal(progressIntervalMs({ FERRY_PROGRESS_INTERVAL_MS: 'soon' }), 2000);
});
