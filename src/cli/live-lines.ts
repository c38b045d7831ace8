/**
 * The pieces the live views (`ferry migrate`, `ferry sync`) build their lines
 * from: segments that give way by priority until a line fits a width, bars,
 * and the units people read at a glance. Pure functions: no terminal here.
 */

/** A part of a line. Text segments shorten or drop by priority; a flex segment takes the width left over. */
export type Segment = TextSegment | FlexSegment;

export interface TextSegment {
  /** The forms of the text, longest first: the fitter falls back to shorter ones, then drops the segment. */
  text: string | readonly string[];
  /** 0: never dropped, only shortened (the line is cut if even these do not fit); a higher number gives way first. */
  priority: number;
}

export interface FlexSegment {
  /** Renders the segment in exactly `width` columns. */
  flex: (width: number) => string;
  /** Narrowest useful width; below it the segment is dropped. */
  min: number;
  /** Widest the segment grows to. */
  max: number;
  priority: number;
}

/** Columns a string takes: one per code point (the views print no wide characters). */
export function columns(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** `s` cut to `width` columns, ending in "…" when cut. */
export function truncateEnd(s: string, width: number): string {
  if (width <= 0) return '';
  if (columns(s) <= width) return s;
  return [...s].slice(0, width - 1).join('') + '…';
}

/** `s` cut to `width` columns by its middle, so that both ends of a path or host name stay readable. */
export function truncateMiddle(s: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...s];
  if (chars.length <= width) return s;
  if (width === 1) return '…';
  const head = Math.ceil((width - 1) / 2);
  const tail = width - 1 - head;
  return chars.slice(0, head).join('') + '…' + (tail ? chars.slice(chars.length - tail).join('') : '');
}

/**
 * `text` broken at spaces into lines of at most `width` columns, the lines
 * after the first indented; a word longer than a line is cut.
 */
export function wrapWords(text: string, width: number, indent = '  '): string[] {
  const w = Math.max(1, width);
  const pad = columns(indent) < w ? indent : '';
  const out: string[] = [];
  text.split('\n').forEach((para, p) => {
    let line = p === 0 ? '' : pad;
    let fresh = true;
    for (const word of para.split(' ')) {
      const candidate = fresh ? line + word : `${line} ${word}`;
      if (fresh || columns(candidate) <= w) line = candidate;
      else {
        out.push(line);
        line = pad + word;
      }
      fresh = false;
      while (columns(line) > w) {
        const chars = [...line];
        out.push(chars.slice(0, w).join(''));
        line = pad + chars.slice(w).join('');
      }
    }
    out.push(line);
  });
  return out;
}

function variants(seg: TextSegment): readonly string[] {
  return typeof seg.text === 'string' ? [seg.text] : seg.text;
}

/**
 * One line of `segments` joined by `separator`, at most `width` columns wide:
 * while it is too wide, the segment with the highest priority number takes
 * its next shorter form or drops out (a flex segment drops out when even its
 * minimum does not fit); flex segments then share what is left; what still
 * does not fit is cut.
 */
export function fitSegments(segments: readonly Segment[], width: number, separator = '  '): string {
  const chosen = segments.map((s) => ('flex' in s ? s.min : 0)); // variant index, or flex width
  const kept = segments.map(() => true);
  const widthOf = (i: number): number => {
    const s = segments[i]!;
    return 'flex' in s ? chosen[i]! : columns(variants(s)[chosen[i]!]!);
  };
  const total = (): number => {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < segments.length; i++) {
      if (!kept[i]) continue;
      sum += widthOf(i);
      count++;
    }
    return sum + Math.max(0, count - 1) * columns(separator);
  };
  while (total() > width) {
    let victim = -1;
    for (let i = 0; i < segments.length; i++) {
      const s = segments[i]!;
      const canGive = s.priority > 0 || (!('flex' in s) && chosen[i]! < variants(s).length - 1);
      if (kept[i] && canGive && (victim < 0 || s.priority >= segments[victim]!.priority)) victim = i;
    }
    if (victim < 0) break;
    const s = segments[victim]!;
    if (!('flex' in s) && chosen[victim]! < variants(s).length - 1) chosen[victim]!++;
    else kept[victim] = false;
  }
  let spare = width - total();
  for (let i = 0; i < segments.length && spare > 0; i++) {
    const s = segments[i]!;
    if (!kept[i] || !('flex' in s)) continue;
    const grow = Math.min(spare, s.max - chosen[i]!);
    chosen[i]! += grow;
    spare -= grow;
  }
  const parts: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    if (!kept[i]) continue;
    const s = segments[i]!;
    parts.push('flex' in s ? s.flex(chosen[i]!) : variants(s)[chosen[i]!]!);
  }
  return truncateEnd(parts.join(separator), width);
}

/** A flex segment for a name (a title, host or path): at most its own length, cut in the middle when narrower. */
export function nameSegment(name: string, priority: number, min = 8): FlexSegment {
  return { flex: (w) => truncateMiddle(name, w).padEnd(w), min: Math.min(min, columns(name)), max: columns(name), priority };
}

/** A flex segment for "FROM -> TO": each side cut in its middle, so that both names keep their ends. */
export function routeSegment(from: string, to: string, priority: number, min = 17): FlexSegment {
  const arrow = ' -> ';
  const full = `${from}${arrow}${to}`;
  const flex = (w: number): string => {
    if (w >= columns(full)) return full.padEnd(w);
    const room = w - arrow.length;
    // The shorter name keeps what it can; the longer one takes the rest.
    const a = Math.min(columns(from), Math.max(Math.ceil(room / 2), room - columns(to)));
    return `${truncateMiddle(from, a)}${arrow}${truncateMiddle(to, room - a)}`;
  };
  return { flex, min: Math.min(min, columns(full)), max: columns(full), priority };
}

/** A flex segment for a progress bar of `fraction` (0..1), brackets included. */
export function barSegment(fraction: number, priority: number, min = 12, max = 42): FlexSegment {
  return { flex: (w) => progressBar(fraction, w), min, max, priority };
}

/** `[████░░░░]` in `width` columns, brackets included. */
export function progressBar(fraction: number, width: number): string {
  const inner = Math.max(0, width - 2);
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.floor(inner * f);
  return `[${'█'.repeat(full)}${'░'.repeat(inner - full)}]`;
}

/** A percentage in 4 columns: "  7%", " 45%", "100%" (100 only when done). */
export function percent(done: number, total: number): string {
  const f = total > 0 ? done / total : 0;
  const p = f >= 1 ? 100 : Math.min(99, Math.floor(f * 100));
  return `${p}%`.padStart(4);
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** A size in the unit that suits it: "512 B", "3.5 KiB", "12.5 MiB", "1.25 GiB". */
export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB) return `${(n / KiB).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

/**
 * Done and total in one unit, chosen by the total, so that growth of a few
 * MiB shows: "3.0/12.5 MiB", "460/1031 MiB", "12.40/20.00 GiB".
 */
export function formatPair(done: number, total: number): string {
  if (total >= 10 * GiB) return `${(done / GiB).toFixed(2)}/${(total / GiB).toFixed(2)} GiB`;
  const d = total >= 100 * MiB ? 0 : 1;
  return `${(done / MiB).toFixed(d)}/${(total / MiB).toFixed(d)} MiB`;
}

/** A rate in MiB/s, against the cap when there is one: "18.7/20 MiB/s", "3.4 MiB/s". */
export function formatRate(bytesPerSecond: number, cap?: number): string {
  const r = (bytesPerSecond / MiB).toFixed(1);
  if (!cap) return `${r} MiB/s`;
  const c = cap / MiB;
  return `${r}/${Number.isInteger(c) ? c : c.toFixed(1)} MiB/s`;
}

/** Seconds as people say them: "42s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * A rate measured from successive readings of a growing count: the change
 * over the last `windowMs`, so one late event does not swing it.
 */
export class RateWindow {
  private readonly samples: Array<{ t: number; v: number }> = [];
  constructor(
    private readonly windowMs = 5000,
    private readonly minSpanMs = 900,
  ) {}

  /** Records `value` read at `t` (milliseconds, any monotonic clock). */
  add(t: number, value: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && t <= last.t) {
      last.v = value;
      return;
    }
    this.samples.push({ t, v: value });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
  }

  /** Units per second over the window; undefined until the readings span `minSpanMs`. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < this.minSpanMs) return undefined;
    return ((last.v - first.v) * 1000) / (last.t - first.t);
  }

  /** Milliseconds the readings span. */
  span(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first && last ? last.t - first.t : 0;
  }
}
