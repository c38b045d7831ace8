/**
 * The ferry command as users run it (bin/ferry): the bundle in dist/bundle.
 * A test run after a bare `tsc` would otherwise run yesterday's bundle, so
 * loading this module rebuilds it first when dist/src is newer.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/util/exec.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
execFileSync(process.execPath, [`${repo}scripts/bundle.mjs`, '--if-stale'], { stdio: 'inherit' });

export const CLI = `${repo}dist/bundle/ferry.js`;

export interface FerryRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `ferry ARGS` through the bundle and says how it ended; a failing command is a result, not an exception. */
export async function runFerry(args: string[], timeoutMs = 120_000): Promise<FerryRun> {
  const r = await run(process.execPath, [CLI, ...args], { allowFailure: true, timeoutMs });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr, ms: r.durationMs };
}
