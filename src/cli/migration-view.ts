/**
 * The live view of a migration: disk and RAM progress together, throughput,
 * dirty rate and ETA. Bars on a terminal (cli-progress); on a pipe, a plain
 * line per second that logs and scripts can read.
 */
import cliProgress from 'cli-progress';
import type { MigrationEvent, MigrationProgress } from '../migrate/progress.js';
import { formatMiB, MiB } from '../util/units.js';

export interface MigrationView {
  onEvent(e: MigrationEvent): void;
  stop(): void;
}

export function createMigrationView(options: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): MigrationView {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { onEvent: () => undefined, stop: () => undefined };
  return stream.isTTY ? new BarView(stream) : new LineView(stream);
}

function summary(p: MigrationProgress): string {
  const parts: string[] = [];
  const dDone = p.disks.reduce((s, d) => s + d.done, 0);
  const dTotal = p.disks.reduce((s, d) => s + d.total, 0);
  if (p.disks.length) parts.push(`disks ${formatMiB(dDone)}/${formatMiB(dTotal)} MiB${p.disks.every((d) => d.ready) ? ' (in sync)' : ''}`);
  if (p.ram) {
    parts.push(`ram ${formatMiB(p.ram.transferred)} MiB sent, ${formatMiB(p.ram.remaining)} MiB left of ${formatMiB(p.ram.total)}`);
    parts.push(`${formatMiB(p.ram.throughput)} MiB/s`);
    parts.push(`dirty ${formatMiB(p.ram.dirtyRate)} MiB/s`);
  }
  if (p.etaSeconds !== undefined && Number.isFinite(p.etaSeconds)) parts.push(`eta ${Math.ceil(p.etaSeconds)} s`);
  return parts.join(', ');
}

class LineView implements MigrationView {
  private last = 0;
  constructor(private readonly out: NodeJS.WriteStream) {}
  onEvent(e: MigrationEvent): void {
    const t = new Date().toISOString().slice(11, 23);
    if (e.type === 'phase') this.out.write(`${t} phase: ${e.phase}\n`);
    else if (e.type === 'log') this.out.write(`${t} ${e.message}\n`);
    else if (e.type === 'warning') this.out.write(`${t} WARNING: ${e.message}\n`);
    else if (e.type === 'progress' && Date.now() - this.last >= 1000) {
      this.last = Date.now();
      this.out.write(`${t} [${e.progress.phase}] ${summary(e.progress)}\n`);
    }
  }
  stop(): void {}
}

class BarView implements MigrationView {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  constructor(out: NodeJS.WriteStream) {
    this.multi = new cliProgress.MultiBar(
      { stream: out, clearOnComplete: false, hideCursor: true, format: ' {label} [{bar}] {percentage}% {value}/{total} MiB {extra}', barsize: 30, fps: 8 },
      cliProgress.Presets.shades_classic,
    );
  }
  private bar(key: string, total: number): cliProgress.SingleBar {
    let b = this.bars.get(key);
    if (!b) {
      b = this.multi.create(Math.max(1, Math.round(total)), 0, { label: key.padEnd(10), extra: '' });
      this.bars.set(key, b);
    }
    return b;
  }
  onEvent(e: MigrationEvent): void {
    if (e.type === 'log') this.multi.log(`${e.message}\n`);
    else if (e.type === 'warning') this.multi.log(`WARNING: ${e.message}\n`);
    else if (e.type === 'phase') this.multi.log(`phase: ${e.phase}\n`);
    else if (e.type === 'progress') {
      const p = e.progress;
      for (const d of p.disks) {
        const b = this.bar(`disk ${d.device}`, d.total / MiB);
        b.setTotal(Math.max(1, Math.round(d.total / MiB)));
        b.update(Math.round(d.done / MiB), { extra: d.ready ? 'in sync' : '' });
      }
      if (p.ram) {
        const total = Math.max(1, Math.round((p.ram.transferred + p.ram.remaining) / MiB));
        const b = this.bar('ram', total);
        b.setTotal(total);
        const eta = p.etaSeconds !== undefined && Number.isFinite(p.etaSeconds) ? `, eta ${Math.ceil(p.etaSeconds)} s` : '';
        b.update(Math.round(p.ram.transferred / MiB), { extra: `${formatMiB(p.ram.throughput)} MiB/s, dirty ${formatMiB(p.ram.dirtyRate)} MiB/s, pass ${p.ram.iterations}${eta}` });
      }
    }
  }
  stop(): void {
    this.multi.stop();
  }
}
