/**
 * Runs external commands (qemu-img, ssh, losetup, ...) and returns or throws
 * one structured result, in the manner of execa, which does the work.
 */
import { FerryError } from './errors.js';

// Loaded on the first command, not at start-up: execa is the largest module
// the CLI and the agent load, and neither runs a command before its first answer.
let execaModule: Promise<typeof import('execa')> | undefined;

/** Starts loading the command runner in the background (an agent does, once it has answered its first call). */
export function preloadRunner(): void {
  execaModule ??= import('execa');
  execaModule.catch(() => undefined);
}

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
  env?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Do not throw on a non-zero exit; the caller inspects exitCode. */
  allowFailure?: boolean;
  /** Return stdout as a Buffer instead of text. */
  binary?: boolean;
}

export interface RunResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const command = [file, ...args].join(' ');
  try {
    const { execa } = await (execaModule ??= import('execa'));
    const child = execa(file, [...args], {
      input: options.input,
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeoutMs,
      cancelSignal: options.signal,
      reject: false,
      stripFinalNewline: true,
    });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    const r = await child.finally(() => {
      if (pid !== undefined) running.delete(pid);
    });
    const result: RunResult = {
      command,
      exitCode: r.exitCode ?? (r.signal ? 128 : 1),
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
      durationMs: performance.now() - started,
    };
    const couldNotStart = r.failed && r.exitCode === undefined && !r.signal;
    if (couldNotStart || r.timedOut || r.isCanceled || (r.signal && !options.allowFailure)) {
      // Could not start at all (ENOENT) or was killed by time-out or signal.
      const why = r.timedOut ? `timed out after ${options.timeoutMs} ms` : r.isCanceled ? 'cancelled' : r.originalMessage ?? r.shortMessage;
      throw new FerryError('COMMAND_FAILED', `Cannot run "${command}": ${why}`, {
        details: { ...result },
        hint: (r as { code?: string }).code === 'ENOENT' ? `install "${file}" (scripts/setup.sh installs ferry's dependencies)` : undefined,
      });
    }
    if (result.exitCode !== 0 && !options.allowFailure) {
      throw new FerryError('COMMAND_FAILED', `Command "${command}" failed with exit code ${result.exitCode}: ${lastLine(result.stderr) || lastLine(result.stdout)}`, {
        details: { ...result },
      });
    }
    return result;
  } catch (e) {
    if (e instanceof FerryError) throw e;
    throw new FerryError('COMMAND_FAILED', `Cannot run "${command}": ${(e as Error).message}`, { cause: e });
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
