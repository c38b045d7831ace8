/**
 * The ferry command as users run it (bin/ferry): the bundle in dist/bundle.
 * A test run after a bare `tsc` would otherwise run yesterday's bundle, so
 * loading this module rebuilds it first when dist/src is newer.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
execFileSync(process.execPath, [`${repo}scripts/bundle.mjs`, '--if-stale'], { stdio: 'inherit' });

export const CLI = `${repo}dist/bundle/ferry.js`;
