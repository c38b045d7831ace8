/**
 * A helper daemon (qemu-storage-daemon) that must not outlive the agent that
 * started it: it runs under a tiny shell guard that stops it when the
 * agent's pipe closes, so a killed agent never leaves an image locked or a
 * port open.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface GuardedDaemon {
  readonly child: ChildProcess;
  /** What the daemon wrote on stderr so far. */
  stderr(): string;
  exited(): boolean;
  /** Asks it to stop (closes the guard's stdin), then kills it after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

// sh: start the daemon, wait for our stdin to close (agent gone), stop it.
const GUARD = '"$@" & pid=$!; trap "kill $pid 2>/dev/null" EXIT; cat >/dev/null; kill $pid 2>/dev/null; wait $pid';

export function startGuarded(argv: readonly string[]): GuardedDaemon {
  const child = spawn('sh', ['-c', GUARD, 'sh', ...argv], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  return {
    child,
    stderr: () => stderr,
    exited: () => exited,
    async stop(graceMs = 10_000) {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(t);
    },
  };
}

/** qemu option values escape commas by doubling them. */
export function escapeOpt(v: string): string {
  return v.replace(/,/g, ',,');
}
