/**
 * Timing trace for finding where the time goes: with FERRY_TRACE=FILE set
 * (inherited by the agents a local transport starts), each `trace(label)`
 * appends "epoch-ms pid label" to FILE. Costs nothing when unset.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.FERRY_TRACE;

export function trace(label: string): void {
  if (!file) return;
  try {
    appendFileSync(file, `${(performance.timeOrigin + performance.now()).toFixed(1)} ${process.pid} ${label}\n`);
  } catch {
    // tracing must never break the work it watches
  }
}
