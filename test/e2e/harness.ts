/**
 * Shared by the end-to-end tests: run the real ferry CLI, bring the lab up,
 * start and stop test guests, read their consoles, check their records.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { RemoteQmp } from '../../src/drivers/qemu/remote-qmp.js';
import { AgentClient } from '../../src/hosts/agent-client.js';
import { findHost, loadInventory } from '../../src/hosts/inventory.js';
import { LAB_SSH_PORT, labState } from '../../src/lab/lab.js';
import { hostPidOf } from '../../src/lab/namespace-pid.js';
import { journalStep, type JournalEntry } from '../../src/migrate/journal.js';
import { run } from '../../src/util/exec.js';
import { lastCounter } from '../../src/lab/records.js';
import { labDiskPath, labVmPaths, readSerial, startLabVm, waitForGuestReady, type LabVmSpec } from '../../src/lab/vm.js';
import { CLI } from './cli.js';

export { CLI };
export const stateDir = mkdtempSync(join(tmpdir(), 'ferry-e2e-state-'));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ferry ARGS`; `onStderr` sees the live view as it comes. */
export function ferry(args: string[], opts: { onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void; env?: Record<string, string>; ownGroup?: boolean } = {}): Promise<CliResult> {
  return ferryInBackground(args, opts).ended;
}

/** Starts `ferry ARGS` and returns at once: the child (to signal it) and its output once it ends. */
export function ferryInBackground(
  args: string[],
  opts: { onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void; env?: Record<string, string>; ownGroup?: boolean } = {},
): { child: ReturnType<typeof spawn>; ended: Promise<CliResult> } {
  // ownGroup: like a command at a terminal, so a test can signal its whole process group (Ctrl-C).
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, FERRY_STATE_DIR: stateDir, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: !!opts.ownGroup });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    opts.onStderr?.(d.toString(), child);
  });
  const ended = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  return { child, ended };
}

/**
 * Runs `ferry ARGS` held (SIGSTOP) right after it journals `step`
 * (FERRY_JOURNAL_HOLD); `strike` runs while it is held, with its pid, then
 * it goes on, unless `strike` killed it.
 */
export async function ferryHeldAt(args: string[], step: string, strike: (pid: number) => Promise<void>): Promise<CliResult> {
  const { child, ended } = ferryInBackground(args, { env: { FERRY_JOURNAL_HOLD: step } });
  await until(`the controller to hold at ${step}`, () => (processState(child.pid!) === 'T' ? true : undefined));
  await strike(child.pid!);
  try {
    process.kill(child.pid!, 'SIGCONT');
  } catch {
    // strike killed it
  }
  return ended;
}

/** A move started by `startHeldMove`: its controller, its end, and its journal as it grows. */
export interface HeldMove {
  child: ReturnType<typeof spawn>;
  done: Promise<CliResult>;
  entries: () => JournalEntry[];
  /** The migration's id, once its journal exists. */
  id: () => string | undefined;
  /** Resolves once the controller holds at its step; rejects if the move ended first. */
  held: () => Promise<void>;
}

/** The entries of the newest journal of a move of `vm`. */
export function lastJournal(vm: string): JournalEntry[] {
  const latest = readdirSync(join(stateDir, 'journal'))
    .filter((f) => f.includes(`-migrate-${vm}-`))
    .sort()
    .at(-1);
  if (!latest) return [];
  return readFileSync(join(stateDir, 'journal', latest), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JournalEntry);
}

/**
 * Starts `ferry ARGS` (a `migrate` of `vm`) in the background, to hold
 * itself (SIGSTOP) right after its journal records `step`
 * (FERRY_JOURNAL_HOLD). The test strikes while it is held, then sends
 * SIGCONT unless it killed it.
 */
export function startHeldMove(vm: string, args: string[], step: string): HeldMove {
  const { child, ended: done } = ferryInBackground(args, { env: { FERRY_JOURNAL_HOLD: step } });
  const journalFile = (): string | undefined => {
    const dir = join(stateDir, 'journal');
    const name = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith(`-migrate-${vm}-${child.pid}.jsonl`)) : undefined;
    return name && join(dir, name);
  };
  const entries = (): JournalEntry[] => {
    const file = journalFile();
    return file
      ? readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as JournalEntry)
      : [];
  };
  const held = async (): Promise<void> => {
    await Promise.race([
      until(`the controller to hold at ${step}`, () => (processState(child.pid!) === 'T' && entries().some((e) => journalStep(e) === step) ? true : undefined), 120_000, 10),
      done.then((r) => {
        throw new Error(`the move of ${vm} ended before ${step}: ${r.stdout} ${r.stderr}`);
      }),
    ]);
  };
  return {
    child,
    done,
    entries,
    held,
    id: () =>
      journalFile()
        ?.replace(/^.*\//, '')
        .replace(/\.jsonl$/, ''),
  };
}

/**
 * Kills (SIGKILL) the agent that a move's journal (its `agents` step) names
 * for `role`, found through its lab host's PID namespace; false when the
 * journal names no agent yet.
 */
export async function killMoveAgent(entries: readonly JournalEntry[], role: 'source' | 'target'): Promise<boolean> {
  const agents = entries.find((e) => e.step === 'agents') as (JournalEntry & Record<'source' | 'target', { host: string; pid: number }>) | undefined;
  if (!agents) return false;
  const { host, pid: nsPid } = agents[role];
  const init = (await labState())?.hosts.find((h) => h.name === host)?.pid;
  if (!init) throw new Error(`lab host ${host} is not up`);
  process.kill(await hostPidOf(init, nsPid), 'SIGKILL');
  return true;
}

/**
 * Runs a move (`ferry ARGS`, a `migrate` of `vm`) held at `step`, kills the
 * move's `role` agent right there, and lets the controller go on: its
 * report, and the move for its journal.
 */
export async function moveWithAgentKilledAt(vm: string, args: string[], step: string, role: 'source' | 'target'): Promise<{ report: Record<string, unknown>; move: HeldMove }> {
  return moveStruckAt(vm, args, step, async (move) => {
    if (!(await killMoveAgent(move.entries(), role))) throw new Error(`the journal names no ${role} agent at ${step}`);
  });
}

/**
 * Runs a move held at `step`, cuts the controller's ssh link to `host`
 * right there (the agent at the other end lives on and reads the end of
 * its input), and lets the controller go on.
 */
export async function moveWithLinkCutAt(vm: string, args: string[], step: string, host: string): Promise<{ report: Record<string, unknown>; move: HeldMove }> {
  return moveStruckAt(vm, args, step, async (move) => {
    if (!cutSshLinks(move.child.pid!, host)) throw new Error(`the controller holds no ssh link to ${host} at ${step}`);
  });
}

async function moveStruckAt(vm: string, args: string[], step: string, strike: (move: HeldMove) => Promise<void>): Promise<{ report: Record<string, unknown>; move: HeldMove }> {
  const move = startHeldMove(vm, args, step);
  await move.held();
  await strike(move);
  process.kill(move.child.pid!, 'SIGCONT');
  return { report: JSON.parse((await move.done).stdout) as Record<string, unknown>, move };
}

/** Kills the ssh links `controller` holds to `host` (the agents at the other end live on); false when it holds none. */
export function cutSshLinks(controller: number, host: string): boolean {
  const links = childrenOf(controller).filter((c) => c.argv[0] === 'ssh' && c.argv.includes(host));
  for (const link of links) process.kill(link.pid, 'SIGKILL');
  return links.length > 0;
}

/** The processes whose parent is `pid`, with their command lines. */
function childrenOf(pid: number): Array<{ pid: number; argv: string[] }> {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(/\) \S (\d+) /.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'))?.[1]);
      if (ppid === pid) out.push({ pid: Number(entry), argv: readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Cuts every TCP connection to `address` but the controller's ssh, as a broken link between the hosts would. */
export async function cutLinkTo(address: string): Promise<void> {
  await run('ss', ['-K', 'dst', address, 'and', 'dport', '!=', `:${LAB_SSH_PORT}`]);
}

/** The records each host's agent keeps of migration `id`, as `role:phase`. */
export async function migrationRecords(agent: AgentClient, id: string): Promise<string[]> {
  return (await agent.call('migration.records', undefined)).filter((r) => r.id === id).map((r) => `${r.role}:${r.phase}`);
}

export async function lab(): Promise<{ a: AgentClient; b: AgentClient; close: () => void }> {
  // Through the CLI, as users start it: the lab's inventory then names the bundled agent.
  const up = await ferry(['lab', 'up']);
  if (up.code !== 0) throw new Error(`ferry lab up failed: ${up.stderr}`);
  const inv = loadInventory();
  const a = await AgentClient.connect(findHost(inv, 'lab-a'));
  const b = await AgentClient.connect(findHost(inv, 'lab-b'));
  return { a, b, close: () => (a.close(), b.close()) };
}

/** Brings the lab up for a test file: `use` gets both hosts' agents before the first test; they close after the last. */
export function useLab(use: (hosts: { a: AgentClient; b: AgentClient }) => void): void {
  let close = (): void => undefined;
  before(async () => {
    const l = await lab();
    close = l.close;
    use(l);
  });
  after(() => close());
}

/** Starts a test guest and waits until it has written a few records. */
export async function startGuest(agent: AgentClient, spec: LabVmSpec, minRecords = 5): Promise<void> {
  await startLabVm(agent, spec);
  await waitForGuestReady(agent, spec.name);
  await waitForCounter(agent, spec.name, minRecords);
}

export async function counter(agent: AgentClient, name: string): Promise<number> {
  return lastCounter(await readSerial(agent, name));
}

export async function waitForCounter(agent: AgentClient, name: string, atLeast: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await counter(agent, name);
    if (n >= atLeast) return n;
    if (Date.now() > deadline) {
      // What a failure needs to be understood from CI's log alone: is the VM there, and what did its console say last.
      const proc = (await agent.call('qemu.list', undefined).catch(() => [])).find((p) => p.name === name);
      let status = 'status unknown';
      if (proc?.qmpSocket) {
        const qmp = await RemoteQmp.open(agent, proc.qmpSocket).catch(() => undefined);
        status = JSON.stringify(await qmp?.execute('query-status').catch((e: unknown) => String(e))) ?? status;
        await qmp?.close();
      }
      // A libvirt domain's QEMU is not one of the lab's own processes: libvirt says how it is.
      const domain = proc ? undefined : await agent.call('libvirt.state', { domain: name }).catch(() => undefined);
      const how = proc ? `QEMU pid ${proc.pid}, ${status}` : domain ? `domain ${domain.state}` : 'no QEMU or domain of that name';
      const tail = (await readSerial(agent, name)).slice(-300);
      throw new Error(`guest ${name} on ${agent.host.name} reached only record ${n}, expected ${atLeast}; ${how}; console ends with: ${JSON.stringify(tail)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function vmPid(agent: AgentClient, name: string): Promise<number | undefined> {
  return (await agent.call('qemu.list', undefined)).find((p) => p.name === name)?.pid;
}

/** Stops a VM hard (as a crash would) and waits for it to be gone. */
export async function killVm(agent: AgentClient, name: string): Promise<void> {
  const pid = await vmPid(agent, name);
  if (pid) await agent.call('qemu.kill', { pid, signal: 'SIGKILL' });
}

/** Removes a VM's lab files on a host, so a test starts clean. */
export async function cleanVm(agent: AgentClient, name: string, disks = 2): Promise<void> {
  await killVm(agent, name);
  for (let i = 0; i < disks; i++) await agent.call('file.remove', { path: labDiskPath(name, i) });
  await agent.call('file.remove', { path: labVmPaths(name).serialLog });
  await agent.call('file.remove', { path: labVmPaths(name).qemuLog });
}

export function diskPath(name: string, i = 0): string {
  return labDiskPath(name, i);
}

export { readSerial, labVmPaths };

/** A process's state letter from /proc (R, S, T for stopped, Z...); undefined once it is gone. */
export function processState(pid: number): string | undefined {
  try {
    return /\) (\S) /.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Polls `probe` until it gives a value: a condition to watch, never a fixed sleep. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
