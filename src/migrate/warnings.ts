/** A move's warnings: what went wrong without changing who owns the VM, each with what to do. */
import type { FerryError } from '../util/errors.js';

export function warn(report: { warnings?: string[] }, message: string): void {
  (report.warnings ??= []).push(message);
}

/** Undoing a step that failed leaves something for the user to do: said in the report, with what to do. */
export function warnRollbackErrors(report: { warnings?: string[] }, errors: readonly FerryError[]): void {
  for (const e of errors) warn(report, `undoing the move failed: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
}
