/**
 * The source side of a libvirt peer-to-peer migration: `virsh migrate` runs
 * here, beside the source libvirtd, which then drives the whole move with
 * the target's libvirtd. The child is kept by migration id so that the
 * controller can watch it, wait for it and abort it; it outlives the
 * controller, and libvirt itself keeps the VM on one side whatever happens
 * to either of them.
 */
import { spawn } from 'node:child_process';
import { writeFile, rm, mkdir } from 'node:fs/promises';
import type { HandlerContext } from '../../../agent/context.js';
import { holdPowerOff, releasePowerHold, settlePowerHold } from '../../../agent/power-hold.js';
import { FerryError } from '../../../util/errors.js';
import { run } from '../../../util/exec.js';
import { sleep } from '../../../util/abort.js';
import { parseDomJobInfoRaw, parseDomState, type DomainJobInfo } from '../virsh-output.js';
import { virsh } from './virsh.js';

export interface MigrationEnd {
  exitCode: number;
  /** virsh's own error, as printed. */
  error?: string;
}

interface RunningMigration {
  domain: string;
  destUri: string;
  end?: MigrationEnd;
  ended: Promise<MigrationEnd>;
  files: string[];
}

const migrations = new Map<string, RunningMigration>();
const WORK_DIR = '/run/ferry/libvirt';

function migration(id: string): RunningMigration {
  const m = migrations.get(id);
  if (!m) throw new FerryError('NOT_FOUND', `No libvirt migration ${id} on this host`, { hint: 'see "ferry history"' });
  return m;
}

export const libvirtMigrationHandlers = {
  /**
   * Starts `virsh migrate`. `xml` and `persistentXml`, when given, are the
   * domain as it is to run and to stay defined on the target (paths mapped):
   * written to files here and passed as --xml and --persistent-xml.
   */
  'libvirt.migrate.start': async (p: { id: string; domain: string; destUri: string; args: string[]; xml?: string; persistentXml?: string; maxDowntimeMs?: number }): Promise<void> => {
    if (migrations.has(p.id) && !migrations.get(p.id)!.end) throw new FerryError('IN_USE', `Migration ${p.id} already runs`);
    await mkdir(WORK_DIR, { recursive: true });
    if (p.maxDowntimeMs !== undefined) await run('virsh', ['-c', 'qemu:///system', 'migrate-setmaxdowntime', p.domain, String(p.maxDowntimeMs)]);
    const files: string[] = [];
    const args = ['-c', 'qemu:///system', 'migrate', ...p.args];
    for (const [flag, xml] of [
      ['--xml', p.xml],
      ['--persistent-xml', p.persistentXml],
    ] as const) {
      if (xml === undefined) continue;
      const file = `${WORK_DIR}/${p.id}${flag.replace(/^--/, '.')}`;
      await writeFile(file, xml);
      files.push(file);
      args.push(flag, file);
    }
    args.push(p.domain, p.destUri);
    const child = spawn('virsh', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const entry: RunningMigration = { domain: p.domain, destUri: p.destUri, files, ended: Promise.resolve({ exitCode: -1 }) };
    entry.ended = new Promise<MigrationEnd>((resolve) => {
      const finish = (exitCode: number): void => {
        entry.end = { exitCode, error: exitCode === 0 ? undefined : stderr.replace(/^error:\s*/gm, '').trim() || `virsh exited with ${exitCode}` };
        for (const f of files) void rm(f, { force: true });
        resolve(entry.end);
      };
      child.on('error', (e) => {
        stderr += e.message;
        finish(127);
      });
      child.on('exit', (code, signal) => finish(code ?? (signal ? 128 : 1)));
    });
    migrations.set(p.id, entry);
  },

  /**
   * Pauses the domain for a warm move's cut-over: the last pass then copies
   * disks that no longer change, and `virsh migrate` moves it paused. If the
   * controller goes away meanwhile, this agent alone gives the domain back
   * its vCPUs wherever it is then: on the target once migration `id` ended
   * well, else here.
   */
  'libvirt.migrate.suspend': async (p: { id: string; domain: string }, ctx: HandlerContext): Promise<{ suspendedAtMs: number }> => {
    await run('virsh', ['-c', 'qemu:///system', 'suspend', p.domain]);
    ctx.onClose(async () => {
      const m = migrations.get(p.id);
      const end = m ? await m.ended : undefined;
      if (end?.exitCode === 0) await run('virsh', ['-c', m!.destUri, 'resume', p.domain], { allowFailure: true, timeoutMs: 30_000 });
      else await resumeIfPaused(p.domain);
    });
    return { suspendedAtMs: Date.now() };
  },

  /**
   * A warm move with --reboot stops the domain for its last pass: until the
   * controller releases it (the target is about to start the domain), this
   * agent resumes it by itself if the controller goes away.
   */
  'libvirt.holdSuspended': async (p: { id: string; domain: string }, ctx: HandlerContext): Promise<void> => {
    await run('virsh', ['-c', 'qemu:///system', 'suspend', p.domain]);
    held.add(p.id);
    ctx.onClose(async () => {
      if (held.delete(p.id)) await resumeIfPaused(p.domain);
    });
  },
  'libvirt.releaseSuspended': async (p: { id: string }): Promise<void> => void held.delete(p.id),

  /**
   * A cold move powers the domain off here: until the controller releases
   * it (the target is about to start the domain), this agent starts it
   * again by itself if the controller goes away, once the power-off under
   * way has ended (within `waitMs`; a domain still running then runs on).
   */
  'libvirt.holdOff': async (p: { id: string; domain: string; waitMs: number }, ctx: HandlerContext): Promise<void> => {
    holdPowerOff(p.id, p.waitMs, ctx, (deadline) => startAgainWhenOff(p.domain, deadline));
  },
  'libvirt.releaseOff': async (p: { id: string }): Promise<void> => releasePowerHold(p.id),
  /** After a failed stop or copy: the domain runs again here, started by whichever agent holds it (this one taking over from a dead one); its state then. */
  'libvirt.settleOff': async (p: { id: string; domain: string }): Promise<{ by: string; state?: string }> => {
    const by = await settlePowerHold(p.id, (deadline) => startAgainWhenOff(p.domain, deadline));
    return { by, state: await domainState(p.domain) };
  },

  /** How the migration ended, waiting up to `waitMs` for it; `running` while virsh still runs. */
  'libvirt.migrate.wait': async (p: { id: string; waitMs?: number }): Promise<{ running: boolean; end?: MigrationEnd }> => {
    const m = migration(p.id);
    if (p.waitMs) await endedWithin(m, p.waitMs);
    return { running: !m.end, end: m.end };
  },

  /**
   * The watch's poll: how the migration ended, waiting up to `waitMs`; while
   * it runs, libvirt's figures for its job. The figures are not waited for
   * once virsh ends: libvirt answers domjobinfo only after the step it is in,
   * which at the end of a job holds the answer back past the job itself.
   */
  'libvirt.migrate.watch': async (p: { id: string; waitMs: number }): Promise<{ running: boolean; end?: MigrationEnd; job?: DomainJobInfo }> => {
    const m = migration(p.id);
    await endedWithin(m, p.waitMs);
    if (m.end) return { running: false, end: m.end };
    const job = virsh(undefined, ['domjobinfo', '--rawstats', '--domain', m.domain], { tolerate: ['not-running'] }).then((r) => (r.failure ? undefined : parseDomJobInfoRaw(r.stdout)));
    const first = await Promise.race([job, m.ended.then(() => 'ended' as const)]).catch(() => undefined);
    if (first === 'ended') return { running: false, end: m.end };
    return { running: true, job: first };
  },

  /** Aborts the job (the domain keeps running here) and waits for virsh to end. Nothing to do when it has ended. */
  'libvirt.migrate.abort': async (p: { id: string }): Promise<MigrationEnd | undefined> => {
    const m = migrations.get(p.id);
    if (!m) return undefined;
    // A job that has not begun yet cannot be aborted: ask again until libvirt accepts, then only wait.
    // Once accepted, asking again would only cut into libvirt's own cancelling of the job and its disk mirrors.
    for (let tries = 0; !m.end && tries < 120; tries++) {
      const r = await run('virsh', ['-c', 'qemu:///system', 'domjobabort', m.domain], { allowFailure: true });
      if (r.exitCode === 0) {
        await endedWithin(m, 120_000);
        break;
      }
      await endedWithin(m, 500);
    }
    return m.end;
  },
};

/** Waits for virsh migrate to end, at most `ms`. */
async function endedWithin(m: RunningMigration, ms: number): Promise<void> {
  if (m.end) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([m.ended, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** Domains held suspended for a warm move's last pass, by migration id. */
const held = new Set<string>();

/** The domain's state here; undefined when libvirt has no such domain. */
async function domainState(domain: string): Promise<string | undefined> {
  const r = await run('virsh', ['-c', 'qemu:///system', 'domstate', domain], { allowFailure: true });
  return r.exitCode === 0 ? parseDomState(r.stdout).state : undefined;
}

/** Waits for a power-off under way to end (until `deadline`), then starts the domain; one still running then runs on. */
async function startAgainWhenOff(domain: string, deadline: number): Promise<void> {
  let state = await domainState(domain);
  while (state !== undefined && state !== 'shut off' && Date.now() < deadline) {
    await sleep(250);
    state = await domainState(domain);
  }
  if (state === 'shut off') await run('virsh', ['-c', 'qemu:///system', 'start', domain], { allowFailure: true });
}

async function resumeIfPaused(domain: string): Promise<void> {
  if ((await domainState(domain)) === 'paused') await run('virsh', ['-c', 'qemu:///system', 'resume', domain], { allowFailure: true });
}
