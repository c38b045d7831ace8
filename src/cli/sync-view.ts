/**
 * The live view of `ferry sync`: an overall line (what is compared or
 * verified, what is left, what was sent against the cap, an ETA) above the
 * bar of the phase. On a pipe, or with --json, a plain line every few seconds.
 */
import type { SyncProgress } from '../sync/sender.js';
import { barSegment, fitSegments, formatBytes, formatDuration, formatPair, formatRate, percent, RateWindow, routeSegment, type Segment } from './live-lines.js';
import { createLiveOutput, PlainOutput, progressIntervalMs, type LiveOutput } from './live-output.js';

export interface SyncView {
  progress(p: SyncProgress): void;
  /** A line that stays, above the bar. */
  log(text: string): void;
  stop(): void;
}

export interface SyncViewOptions {
  /** Default: stderr. */
  stream?: NodeJS.WriteStream;
  /** Plain lines even on a terminal (--json: a script reads them). */
  plain?: boolean;
  /** The source and destination as the user named them. */
  route?: { from: string; to: string };
  /** The --bandwidth cap in bytes per second. */
  bandwidthBytes?: number;
  /** Milliseconds between plain lines (default: $FERRY_PROGRESS_INTERVAL_MS, else 2000). */
  intervalMs?: number;
}

export function createSyncView(options: SyncViewOptions = {}): SyncView {
  const stream = options.stream ?? process.stderr;
  const watch = new SyncWatch({ route: options.route, cap: options.bandwidthBytes });
  const status = (): string | undefined => syncStatusLine(watch.state());
  const out: LiveOutput = options.plain
    ? new PlainOutput(stream, { status, intervalMs: options.intervalMs ?? progressIntervalMs() })
    : createLiveOutput(stream, { lines: (width) => renderSyncLines(watch.state(), width), status, intervalMs: options.intervalMs });
  return {
    progress(p: SyncProgress): void {
      watch.progress(p);
      out.refresh();
    },
    log: (text) => out.log(text),
    stop: () => out.stop(),
  };
}

export interface SyncViewState {
  route?: { from: string; to: string };
  cap?: number;
  /** The last progress report. */
  last?: SyncProgress;
  /** Bytes per second put on the wire. */
  sendRate?: number;
  /** Bytes per second compared (or verified), recently. */
  rate?: number;
  etaSeconds?: number;
}

/** Turns the sender's reports into a view state; rates over the last seconds, timed by the sender's clock. */
export class SyncWatch {
  private readonly current: SyncViewState;
  private readonly sent = new RateWindow();
  private done = new RateWindow();
  private phase?: SyncProgress['phase'];

  constructor(init: { route?: { from: string; to: string }; cap?: number } = {}) {
    this.current = { route: init.route, cap: init.cap };
  }

  state(): SyncViewState {
    return this.current;
  }

  progress(p: SyncProgress): void {
    const s = this.current;
    const t = p.seconds * 1000;
    if (p.phase !== this.phase) {
      this.phase = p.phase;
      this.done = new RateWindow();
    }
    const { done, total } = phaseBytes(p);
    this.done.add(t, done);
    this.sent.add(t, p.bytesSent);
    s.last = p;
    s.sendRate = this.sent.rate();
    s.rate = this.done.rate();
    const left = total - done;
    if (left <= 0) s.etaSeconds = 0;
    else if (s.rate && s.rate > 0) s.etaSeconds = left / s.rate;
    else if (p.seconds > 1 && done > 0) s.etaSeconds = (left * p.seconds) / done;
  }
}

/** What the current phase has done of what it must do. */
function phaseBytes(p: SyncProgress): { done: number; total: number } {
  if (p.phase === 'verify') return { done: p.bytesVerified, total: p.bytesToVerify };
  if (p.phase === 'done') return { done: p.bytesTotal, total: p.bytesTotal };
  return { done: p.bytesCompared, total: p.bytesTotal };
}

function overallSegments(s: SyncViewState, p: SyncProgress): Segment[] {
  const { done, total } = phaseBytes(p);
  const segs: Segment[] = [];
  if (s.route) segs.push(routeSegment(s.route.from, s.route.to, 6));
  segs.push({ text: p.phase === 'done' ? 'done' : p.phase === 'verify' ? ['verifying', 'verify'] : ['comparing', 'compare'], priority: 5 });
  segs.push({ text: formatPair(done, total), priority: 0 });
  segs.push({ text: `${formatBytes(Math.max(0, total - done))} left`, priority: 2 });
  if (p.phase === 'verify') {
    if (s.rate !== undefined) segs.push({ text: [`reads ${formatRate(s.rate)}`, formatRate(s.rate)], priority: 1 });
  } else {
    const sent = `sent ${formatBytes(p.bytesSent)}`;
    if (s.sendRate !== undefined) segs.push({ text: [`${sent} at ${formatRate(s.sendRate, s.cap)}`, formatRate(s.sendRate, s.cap)], priority: 1 });
    else segs.push({ text: s.cap ? [`${sent}, cap ${formatRate(s.cap)}`, sent] : sent, priority: 1 });
  }
  if (p.phase !== 'done') segs.push({ text: s.etaSeconds === undefined ? 'eta --' : `eta ${formatDuration(s.etaSeconds)}`, priority: 0 });
  return segs;
}

/** The live lines, none wider than `width`: the overall line, then the phase's bar. None before the first report. */
export function renderSyncLines(s: SyncViewState, width: number): string[] {
  const p = s.last;
  if (!p) return [];
  const { done, total } = phaseBytes(p);
  const label = p.phase === 'verify' ? 'verify ' : p.phase === 'done' ? 'done   ' : 'compare';
  const blocks = [`${p.blocksChanged} of ${p.blocksTotal} blocks changed, ${p.blocksConfirmed} written`, `${p.blocksChanged} of ${p.blocksTotal} changed`, `${p.blocksChanged} changed`];
  return [
    fitSegments(overallSegments(s, p), width),
    fitSegments([{ text: ` ${label}`, priority: 0 }, barSegment(total > 0 ? done / total : 1, 1, 10, 52), { text: percent(done, total), priority: 0 }, { text: blocks, priority: 2 }], width),
  ];
}

/** The plain line: the figures scripts and tests read ("N blocks confirmed") and the ETA. */
export function syncStatusLine(s: SyncViewState): string | undefined {
  const p = s.last;
  if (!p) return undefined;
  const { done, total } = phaseBytes(p);
  const phase = p.phase === 'verify' ? 'verify ' : 'compare';
  const eta = s.etaSeconds === undefined ? '' : `, eta ${formatDuration(s.etaSeconds)}`;
  return (
    `${phase}: ${formatBytes(done)} of ${formatBytes(total)} compared, ${formatBytes(p.bytesSent)} sent, ${p.blocksChanged} blocks changed, ` +
    `${p.blocksConfirmed} blocks confirmed, ${formatBytes(done / Math.max(p.seconds, 0.001))}/s${eta}`
  );
}
