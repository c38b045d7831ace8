/**
 * Runs external commands (qemu-img, ssh, losetup, ...) and returns or throws
 * one structured result.
 *
 * Built on node's own execFile, not a process library: every agent loads
 * this module, and an agent's start-up lies on the critical path of a sync.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { FerryError } from './errors.js';

/** Output kept per stream at most (qemu-img map of a huge, fragmented image is long). */
const MAX_OUTPUT = 512 << 20;

/**
 * Commands started by `run` that are still running, by pid: an agent's own
 * short-lived helpers (qemu-img info probing a disk, say), which a look for
 * the disk's users made at the same moment must not count.
 */
const running = new Set<number>();

export function runningCommandPids(): ReadonlySet<number> {
  return running;
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Do not throw on a non-zero exit; the caller inspects exitCode. */
  allowFailure?: boolean;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** How a command ended, as execFile tells it. */
type Ending = { error: ExecFileException | null; stdout: string; stderr: string };

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const command = [file, ...args].join(' ');
  let timedOut = false;
  const ending = await new Promise<Ending>((resolve) => {
    const child = execFile(
      file,
      [...args],
      {
        cwd: options.cwd,
        env: options.env ? { ...process.env, ...options.env } : undefined,
        signal: options.signal,
        maxBuffer: MAX_OUTPUT,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        clearTimeout(timer);
        if (child.pid !== undefined) running.delete(child.pid);
        resolve({ error, stdout, stderr });
      },
    );
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill('SIGTERM');
          }, options.timeoutMs);
    if (child.pid !== undefined) running.add(child.pid);
    // Nothing more to read than the input, if any: a command reading its stdin must not wait for ever.
    child.stdin?.on('error', () => undefined); // a command that exits without reading it
    child.stdin?.end(options.input);
  });
  const { error } = ending;
  const result: RunResult = {
    command,
    exitCode: !error ? 0 : typeof error.code === 'number' ? error.code : error.signal ? 128 : 1,
    stdout: stripFinalNewline(ending.stdout),
    stderr: stripFinalNewline(ending.stderr),
    durationMs: performance.now() - started,
  };
  const couldNotStart = typeof error?.code === 'string' && error.code !== 'ABORT_ERR';
  const cancelled = error?.name === 'AbortError' || error?.code === 'ABORT_ERR';
  if (couldNotStart || timedOut || cancelled || (error?.signal && !options.allowFailure)) {
    // Could not start at all (ENOENT), or was killed by time-out, cancellation or a signal.
    const why = timedOut ? `timed out after ${options.timeoutMs} ms` : cancelled ? 'cancelled' : couldNotStart ? error!.message : `killed by ${error!.signal}`;
    throw new FerryError('COMMAND_FAILED', `Cannot run "${command}": ${why}`, {
      details: { ...result },
      hint: error?.code === 'ENOENT' ? `install "${file}" (scripts/setup.sh installs ferry's dependencies)` : undefined,
    });
  }
  if (result.exitCode !== 0 && !options.allowFailure) {
    throw new FerryError('COMMAND_FAILED', `Command "${command}" failed with exit code ${result.exitCode}: ${lastLine(result.stderr) || lastLine(result.stdout)}`, {
      details: { ...result },
    });
  }
  return result;
}

function stripFinalNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** Whether a process of this PID (as this machine sees it) still exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
