/**
 * Timing trace for finding where the time goes: with FERRY_TRACE=FILE set
 * (inherited by the agents a local transport starts), each `trace(label)`
 * appends "epoch-ms pid label" to FILE. Costs nothing when unset.
 */
import { appendFileSync } from 'node:fs';

const file = process.env.FERRY_TRACE;
let first = true;

/** Whether FERRY_TRACE is set: a caller can skip building what it would trace. */
export const tracing = !!file;

export function trace(label: string): void {
  if (!file) return;
  try {
    // The process's first line says when node itself started, before its own boot.
    const boot = first ? `${performance.timeOrigin.toFixed(1)} ${process.pid} node: started\n` : '';
    first = false;
    appendFileSync(file, `${boot}${(performance.timeOrigin + performance.now()).toFixed(1)} ${process.pid} ${label}\n`);
  } catch {
    // tracing must never break the work it watches
  }
}
