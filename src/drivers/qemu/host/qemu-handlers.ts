/**
 * QEMU processes on the agent's host: find them, start them, stop them.
 * A VM is a qemu-system process with a QMP monitor; its name is its -name.
 */
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseQemuArgv } from '../argv.js';
import { parseCpuHelp, parseCpuinfoFlags, type CpuSupport } from '../cpu.js';
import { FerryError } from '../../../util/errors.js';
import { run } from '../../../util/exec.js';
import { sleep } from '../../../util/abort.js';
import type { HandlerContext } from '../../../agent/context.js';
import { holdPowerOff, releasePowerHold, settlePowerHold } from '../../../agent/power-hold.js';
import { runGuestAgain } from '../guest-power.js';
import { acquireQmp, releaseQmp } from './qmp-pool.js';

export interface QemuProcess {
  pid: number;
  name: string;
  argv: string[];
  qmpSocket?: string;
  /** Files the process holds open, for "is this image in use" checks. */
}

export async function listQemuProcesses(): Promise<QemuProcess[]> {
  const out: QemuProcess[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let raw: string;
    try {
      raw = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const argv = raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
    if (argv.length === 0 || !/qemu-system-|qemu-kvm/.test(argv[0]!.split('/').pop() ?? '')) continue;
    const parsed = parseQemuArgv(argv);
    if (!parsed.qmpSocket) continue; // no monitor we can speak to: not a VM ferry can manage
    out.push({ pid: Number(entry), name: parsed.name ?? `pid-${entry}`, argv, qmpSocket: parsed.qmpSocket });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Guests a warm move stopped for its last pass, by migration id: run again if the controller goes away first. */
const stopped = new Map<string, string>();

export const qemuHandlers = {
  /**
   * A warm move with --reboot stops the guest for its last pass: until the
   * controller releases it (the target is about to start the VM), this agent
   * runs it again by itself if the controller goes away.
   */
  'qemu.holdStopped': async (p: { id: string; qmpSocket: string }, ctx: HandlerContext): Promise<void> => {
    stopped.set(p.id, p.qmpSocket);
    ctx.onClose(async () => {
      const socket = stopped.get(p.id);
      if (!socket) return;
      stopped.delete(p.id);
      const qmp = await acquireQmp(socket).catch(() => undefined);
      if (!qmp) return;
      await runGuestAgain(qmp).catch(() => undefined);
      releaseQmp(socket, qmp);
    });
  },
  'qemu.releaseStopped': async (p: { id: string }): Promise<void> => void stopped.delete(p.id),

  /**
   * A cold move powers the VM off here: until the controller releases it
   * (the target is about to start the VM), this agent starts it again by
   * itself, from its command line, if the controller goes away, once the
   * power-off under way has ended (within `waitMs`; a guest still running
   * then runs on as it is).
   */
  'qemu.holdOff': async (p: { id: string; name: string; pid: number; argv: string[]; pidfile: string; waitMs: number }, ctx: HandlerContext): Promise<void> => {
    holdPowerOff(p.id, p.waitMs, ctx, (deadline) => startAgainWhenOff(p, deadline));
  },
  'qemu.releaseOff': async (p: { id: string }): Promise<void> => releasePowerHold(p.id),
  /** After a failed stop or copy: the VM runs again here, started by whichever agent holds it (this one taking over from a dead one). */
  'qemu.settleOff': async (p: { id: string; name: string; pid: number; argv: string[]; pidfile: string }): Promise<{ by: string; running: boolean }> => {
    const by = await settlePowerHold(p.id, (deadline) => startAgainWhenOff(p, deadline));
    return { by, running: (await listQemuProcesses()).some((q) => q.name === p.name) };
  },

  'qemu.list': async (): Promise<QemuProcess[]> => listQemuProcesses(),

  'qemu.version': async (p: { binary?: string }): Promise<{ version: string }> => {
    const r = await run(p.binary ?? 'qemu-system-x86_64', ['--version']);
    return { version: /version (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]! };
  },

  /**
   * Starts QEMU daemonized (it detaches once its devices are set up, so a
   * bad command line fails here with QEMU's own message).
   */
  'qemu.start': async (p: { argv: string[]; pidfile: string }): Promise<{ pid: number }> => startQemu(p.argv, p.pidfile),

  /** Sends a signal to a QEMU process (SIGKILL to destroy a target that failed). */
  'qemu.kill': async (p: { pid: number; signal?: NodeJS.Signals; waitMs?: number }): Promise<{ exited: boolean }> => {
    try {
      process.kill(p.pid, p.signal ?? 'SIGTERM');
    } catch {
      return { exited: true };
    }
    const deadline = Date.now() + (p.waitMs ?? 5000);
    while (Date.now() < deadline) {
      if (!(await isAlive(p.pid))) return { exited: true };
      await sleep(50);
    }
    return { exited: false };
  },

  /** What this host can give a guest's CPU: the QEMU's models and flags, and the processor's own flags. */
  'qemu.cpuSupport': async (p: { binary?: string }): Promise<CpuSupport> => {
    const help = await run(p.binary ?? 'qemu-system-x86_64', ['-cpu', 'help']);
    const cpuinfo = await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '');
    return { ...parseCpuHelp(help.stdout), hostFlags: parseCpuinfoFlags(cpuinfo) };
  },

  'qemu.alive': async (p: { pid: number }): Promise<{ alive: boolean }> => ({ alive: await isAlive(p.pid) }),
};

/** Waits for the power-off of QEMU `pid` to end (until `deadline`), then starts the VM from its command line unless one of its name runs. */
async function startAgainWhenOff(vm: { name: string; pid: number; argv: string[]; pidfile: string }, deadline: number): Promise<void> {
  while ((await isAlive(vm.pid)) && Date.now() < deadline) await sleep(200);
  if (await isAlive(vm.pid)) return;
  if ((await listQemuProcesses()).some((q) => q.name === vm.name)) return;
  await startQemu(vm.argv, vm.pidfile).catch(() => undefined);
}

async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    if (!/\) Z /.test(stat)) return true;
    // The leader is a zombie, but until its last thread is gone it still holds files (and image locks).
    return (await fs.readdir(`/proc/${pid}/task`)).length > 1;
  } catch {
    return false;
  }
}

export async function startQemu(argv: readonly string[], pidfile: string): Promise<{ pid: number }> {
  const [file, ...args] = argv;
  await fs.mkdir(dirname(pidfile), { recursive: true });
  const withDaemon = args.includes('-daemonize') ? args : [...args, '-daemonize'];
  const r = await run(file!, withDaemon.includes('-pidfile') ? withDaemon : [...withDaemon, '-pidfile', pidfile], { allowFailure: true, timeoutMs: 60_000 });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `QEMU did not start: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}`}`, {
      details: { argv, stderr: r.stderr },
    });
  }
  // The pidfile QEMU wrote: the one named in its command line, if any.
  const named = args.indexOf('-pidfile');
  const pid = Number((await fs.readFile(named >= 0 ? args[named + 1]! : pidfile, 'utf8')).trim());
  return { pid };
}
