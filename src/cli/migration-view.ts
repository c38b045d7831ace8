/**
 * The live view of a migration. One overall line for the whole move (disks
 * and RAM together: done and left, throughput against the cap, the guest's
 * disk-write and RAM-dirty rates, an ETA or the verdict that it will not
 * converge) above a bar per disk and one for RAM. On a pipe, the same as a
 * plain line every few seconds.
 */
import type { MigrationEvent, MigrationProgress, RamProgress } from '../drivers/progress.js';
import {
  columns,
  fitSegments,
  formatBytes,
  formatDuration,
  formatPair,
  formatRate,
  nameSegment,
  percent,
  progressBar,
  RateWindow,
  truncateMiddle,
  type Segment,
  type TextSegment,
} from './live-lines.js';
import { createLiveOutput, type LiveOutput } from './live-output.js';

export interface MigrationView {
  onEvent(e: MigrationEvent): void;
  stop(): void;
}

export interface MigrationViewOptions {
  /** No view at all (-q, or --json without a terminal). */
  quiet?: boolean;
  /** Default: stderr, so that stdout keeps only the result. */
  stream?: NodeJS.WriteStream;
  /** What moves where, e.g. "web1 lab-a -> lab-b". */
  title?: string;
  /** The --bandwidth cap in bytes per second, for "18.7/20 MiB/s". */
  bandwidthBytes?: number;
  /** Milliseconds between status lines on a pipe (default: $FERRY_PROGRESS_INTERVAL_MS, else 2000). */
  intervalMs?: number;
}

export function createMigrationView(options: MigrationViewOptions = {}): MigrationView {
  if (options.quiet) return { onEvent: () => undefined, stop: () => undefined };
  const watch = new MigrationWatch({ title: options.title, cap: options.bandwidthBytes });
  const out: LiveOutput = createLiveOutput(options.stream ?? process.stderr, {
    lines: (width) => renderMigrationLines(watch.state(), width),
    status: () => migrationStatusLine(watch.state()),
    intervalMs: options.intervalMs,
    timestamps: true,
  });
  return {
    onEvent(e: MigrationEvent): void {
      if (e.type === 'progress') {
        watch.progress(e.progress, performance.now());
        out.refresh();
      } else if (e.type === 'phase') {
        watch.phase(e.phase);
        out.log(`phase: ${e.phase}`);
      } else if (e.type === 'log') out.log(e.message);
      else if (e.type === 'warning') {
        watch.warning(e.code);
        out.log(`WARNING: ${e.message}`);
      }
    },
    stop: () => out.stop(),
  };
}

/** A disk as the view shows it. */
export interface DiskState {
  device: string;
  done: number;
  total: number;
  ready: boolean;
  /** What the total grew by since the first reading: bytes the guest wrote during the copy. */
  grown: number;
}

/** Everything the view shows, measured from the events so far. */
export interface MigrationViewState {
  title?: string;
  phase?: string;
  disks: DiskState[];
  ram?: RamProgress;
  /** The guest's RAM, when known before the RAM phase. */
  ramSize?: number;
  /** Bytes per second allowed, disks and RAM together. */
  cap?: number;
  /** Bytes per second moved, disks and RAM together. */
  throughput?: number;
  /** Bytes per second the guest writes to its disks (or, without the controller's figure, the writes that add to the copy). */
  diskWriteRate?: number;
  etaSeconds?: number;
  /** The guest writes as fast as the link copies: no ETA can be given. */
  outpaced?: boolean;
  /** The controller said the migration will not converge. */
  notConverging?: boolean;
}

/** Phases that report progress; the ETA means nothing in the others. */
const COPY_PHASES = new Set(['mirror', 'memory', 'copy', 'precopy', 'catch-up']);
/** How long the writes must outpace the link before the view says so. */
const OUTPACED_AFTER_MS = 3000;

/**
 * Turns the controller's progress events into a view state: the rates come
 * from successive events (change in bytes over time), the growth of each
 * disk from its first total.
 */
export class MigrationWatch {
  private readonly current: MigrationViewState;
  private readonly firstTotal = new Map<string, number>();
  private readonly moved = new RateWindow();
  private readonly grown = new RateWindow();

  constructor(init: { title?: string; cap?: number } = {}) {
    this.current = { title: init.title, cap: init.cap, disks: [] };
  }

  state(): MigrationViewState {
    return this.current;
  }

  phase(name: string): void {
    this.current.phase = name;
    if (!COPY_PHASES.has(name)) {
      this.current.etaSeconds = undefined;
      this.current.outpaced = undefined;
      // Reaching the switch-over proves it converged after all.
      this.current.notConverging = undefined;
    }
    if (name === 'finish') {
      // The target took the VM over: every byte has crossed, though no report said so.
      const s = this.current;
      s.disks = s.disks.map((d) => ({ ...d, done: d.total }));
      if (s.ram) s.ram = { ...s.ram, transferred: s.ram.transferred + s.ram.remaining, remaining: 0 };
    }
  }

  warning(code: string): void {
    if (code === 'NOT_CONVERGING') this.current.notConverging = true;
  }

  /** Takes a progress event received at `now` (milliseconds, monotonic). */
  progress(p: MigrationProgress, now: number): void {
    const s = this.current;
    s.phase = p.phase;
    s.disks = p.disks.map((d) => {
      let first = this.firstTotal.get(d.device);
      if (first === undefined && d.total > 0) this.firstTotal.set(d.device, (first = d.total));
      return { device: d.device, done: d.done, total: d.total, ready: d.ready, grown: first === undefined ? 0 : Math.max(0, d.total - first) };
    });
    s.ram = p.ram;
    s.ramSize = p.ramSize ?? s.ramSize;
    s.cap = p.bandwidthLimit ?? s.cap;
    const grown = sum(s.disks.map((d) => d.grown));
    this.moved.add(now, sum(p.disks.map((d) => d.done)) + (p.ram?.transferred ?? 0));
    this.grown.add(now, grown);
    s.throughput = this.moved.rate() ?? p.ram?.throughput;
    // What adds to the copy: a write to a region already copied must cross
    // again, and in write-blocking mode a write crosses as it happens (done
    // and total grow together). Either way the total grows by it.
    const addRate = Math.max(0, this.grown.rate() ?? 0);
    const reported = p.disks.map((d) => d.writeRate);
    s.diskWriteRate = reported.length && reported.every((r) => r !== undefined) ? sum(reported as number[]) : this.grown.rate() === undefined ? undefined : addRate;

    const left = leftBytes(s);
    s.outpaced = undefined;
    if (left <= 0) s.etaSeconds = 0;
    else if (s.throughput === undefined) s.etaSeconds = p.etaSeconds ?? (s.cap ? left / s.cap : undefined);
    else {
      const net = s.throughput - addRate - (p.ram?.dirtyRate ?? 0);
      if (net > Math.max(s.throughput * 0.02, 1024)) s.etaSeconds = left / net;
      else if (this.moved.span() >= OUTPACED_AFTER_MS) {
        s.etaSeconds = undefined;
        s.outpaced = true;
      } else s.etaSeconds = p.etaSeconds;
    }
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** RAM in the overall figures: what QEMU reports once the RAM phase runs, the guest's size before. */
function ramTotals(s: MigrationViewState): { done: number; total: number } | undefined {
  if (s.ram) return { done: s.ram.transferred, total: s.ram.transferred + s.ram.remaining };
  if (s.ramSize) return { done: 0, total: s.ramSize };
  return undefined;
}

function leftBytes(s: MigrationViewState): number {
  const ram = ramTotals(s);
  return sum(s.disks.map((d) => Math.max(0, d.total - d.done))) + (ram ? ram.total - ram.done : 0);
}

/** The overall line's parts, in order; the plain line joins their longest forms. */
function overallSegments(s: MigrationViewState): Segment[] {
  const ram = ramTotals(s);
  const done = sum(s.disks.map((d) => d.done)) + (ram?.done ?? 0);
  const total = sum(s.disks.map((d) => d.total)) + (ram?.total ?? 0);
  const segs: Segment[] = [];
  if (s.title) segs.push(nameSegment(s.title, 6, 10));
  if (s.phase) segs.push({ text: s.phase, priority: 2 });
  segs.push({ text: ram || !s.disks.length ? formatPair(done, total) : [`${formatPair(done, total)} of disks`, formatPair(done, total)], priority: 0 });
  segs.push({ text: `${formatBytes(leftBytes(s))} left`, priority: 2 });
  // The rates are of the copy; from the switch-over on, the guest is paused, then moved.
  const copying = s.phase === undefined || COPY_PHASES.has(s.phase);
  if (copying && s.throughput !== undefined) segs.push({ text: formatRate(s.throughput, s.cap), priority: 1 });
  else if (copying && s.cap) segs.push({ text: `cap ${formatRate(s.cap)}`, priority: 1 });
  if (copying && s.diskWriteRate !== undefined) segs.push({ text: [`guest writes ${formatRate(s.diskWriteRate)}`, `writes ${formatRate(s.diskWriteRate)}`], priority: 3 });
  if (copying && s.ram) segs.push({ text: [`RAM dirtied ${formatRate(s.ram.dirtyRate)}`, `dirty ${formatRate(s.ram.dirtyRate)}`], priority: 3 });
  if (s.notConverging) segs.push({ text: ['will not converge', 'no converge'], priority: 0 });
  else if (s.outpaced) segs.push({ text: ['no eta: the guest writes as fast as the link copies', 'no eta: writes outpace the link', 'no eta'], priority: 0 });
  else if (copying) segs.push({ text: s.etaSeconds === undefined ? 'eta --' : `eta ${formatDuration(s.etaSeconds)}`, priority: 0 });
  return segs;
}

interface BarRow {
  label: string;
  done: number;
  total: number;
  /** Longest first. */
  note: string[];
}

function barRows(s: MigrationViewState): BarRow[] {
  const rows: BarRow[] = s.disks.map((d) => {
    const grown = d.grown > 0 ? formatBytes(d.grown) : undefined;
    const sync = d.ready ? 'in sync' : undefined;
    const note = grown
      ? [
          [`+${grown} written by the guest during the copy`, sync],
          [`+${grown} written by the guest`, sync],
          [`+${grown} by the guest`, sync],
          [`+${grown}`, sync],
        ].map((p) => p.filter(Boolean).join(', '))
      : sync
        ? [sync]
        : [];
    return { label: d.device, done: d.done, total: d.total, note };
  });
  const ram = ramTotals(s);
  if (s.ram && ram) {
    const again = s.ram.iterations >= 2 ? [`pass ${s.ram.iterations}: resends pages the guest dirtied`, `pass ${s.ram.iterations}`] : [`pass ${s.ram.iterations}`];
    rows.push({ label: 'RAM', ...ram, note: again });
  } else if (ram) rows.push({ label: 'RAM', ...ram, note: ['after the disks'] });
  return rows;
}

/**
 * The live lines, none wider than `width`: the overall line, then a bar per
 * disk and RAM in aligned columns (name, bar, percentage, amount, note). The
 * bars share one width, which leaves room for the notes' middle forms.
 * None before the first progress.
 */
export function renderMigrationLines(s: MigrationViewState, width: number): string[] {
  if (!s.disks.length && !s.ram) return [];
  const rows = barRows(s);
  const labelWidth = Math.min(Math.max(...rows.map((r) => columns(r.label))), Math.max(8, Math.floor(width / 5)));
  const amounts = rows.map((r) => formatPair(r.done, r.total));
  const amountWidth = Math.max(...amounts.map(columns));
  const fixed = 1 + labelWidth + 2 + 2 + 4 + 2 + amountWidth;
  const noteRoom = Math.min(Math.floor(width / 3), Math.max(0, ...rows.map((r) => columns(r.note[Math.min(1, r.note.length - 1)] ?? '') + 2)));
  const barWidth = Math.max(10, Math.min(42, width - fixed - noteRoom));
  return [
    fitSegments(overallSegments(s), width),
    ...rows.map((r, i) =>
      fitSegments(
        [
          { text: ` ${truncateMiddle(r.label, labelWidth).padEnd(labelWidth)}`, priority: 0 },
          { text: progressBar(r.total > 0 ? r.done / r.total : 0, barWidth), priority: 1 },
          { text: percent(r.done, r.total), priority: 0 },
          { text: amounts[i]!.padStart(amountWidth), priority: 0 },
          ...(r.note.length ? [{ text: r.note, priority: 2 }] : []),
        ],
        width,
      ),
    ),
  ];
}

function longest(seg: Segment): string | undefined {
  if ('flex' in seg) return seg.flex(seg.max).trimEnd();
  const t = (seg as TextSegment).text;
  return typeof t === 'string' ? t : t[0];
}

/** The status line for a pipe: the overall figures and each disk's and RAM's, in full. */
export function migrationStatusLine(s: MigrationViewState): string | undefined {
  if (!s.disks.length && !s.ram) return undefined;
  const overall = overallSegments(s)
    .filter((seg) => !('flex' in seg))
    .map(longest)
    .join(', ');
  const rows = barRows(s).map((r) => `${r.label} ${percent(r.done, r.total).trim()} ${formatPair(r.done, r.total)}${r.note.length ? ` (${r.note[0]})` : ''}`);
  return [overall, ...rows].join('; ');
}
