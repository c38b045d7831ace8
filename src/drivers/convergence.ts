/**
 * Whether a pre-copy of RAM is converging, judged the same way for every
 * driver from the RAM progress it polls: once the first pass is over, a
 * guest that dirties RAM about as fast as the link carries it (90% or
 * more) for a while in a row will not converge, and the user is told once
 * what to do about it.
 */
import { formatMiB } from '../util/units.js';
import type { StepContext } from './driver.js';
import type { RamProgress } from './progress.js';

/** How long the dirty rate must keep up with the link before the warning: a moment's burst is no verdict. */
const SUSTAINED_MS = 2000;
/** Dirtying this share of what the link carries leaves too little headroom for the last pass. */
const KEEPS_UP = 0.9;

/** Watches one migration's RAM; warns its listener and journal once. */
export class ConvergenceWatch {
  private since?: number;
  private warned = false;

  constructor(
    private readonly ctx: Pick<StepContext, 'listener' | 'journal'>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one poll's RAM progress; true when this poll gave the warning. */
  observe(ram: RamProgress | undefined): boolean {
    if (this.warned) return false;
    if (!ram || ram.iterations < 2 || ram.dirtyRate <= 0 || ram.throughput <= 0 || ram.dirtyRate < ram.throughput * KEEPS_UP) {
      this.since = undefined;
      return false;
    }
    const now = this.now();
    this.since ??= now;
    if (now - this.since < SUSTAINED_MS) return false;
    this.warned = true;
    this.ctx.listener({
      type: 'warning',
      code: 'NOT_CONVERGING',
      message: `The guest dirties ${formatMiB(ram.dirtyRate)} MiB/s of RAM, as fast as the ${formatMiB(ram.throughput)} MiB/s the link carries: the migration will not converge. Raise --bandwidth, pass --auto-converge to slow the guest down, or press Ctrl-C to abort (the VM keeps running on the source).`,
    });
    this.ctx.journal.record('warning', { code: 'NOT_CONVERGING', dirtyRate: ram.dirtyRate, throughput: ram.throughput });
    return true;
  }
}
