/**
 * Settling a libvirt migration whose controller went away. libvirt itself
 * keeps the domain on one side: the source's virsh, which outlives ferry,
 * lets the source libvirtd finish or fail the job. Once no job runs, the
 * domain is where libvirt left it; what ferry made on the target (listed in
 * the journal before it was made) goes unless the domain runs there.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { sleep } from '../../util/abort.js';
import { coldProgress } from '../cold-journal.js';
import type { Recovery } from '../driver.js';
import { clearLeftovers } from '../block-passes.js';
import { claimedLvs, removeClaimedLvs } from '../target-lvs.js';
import { carryAutostart, domainMonitor, domainRunning, domainState } from './domains.js';
import { claimedSecrets, removeSecrets } from './secret-copy.js';

/** How long a job left running by a lost controller may take to end by itself. */
const JOB_WAIT_MS = 10 * 60_000;

export async function recoverLibvirtMigration(vmName: string, source: AgentClient, target: AgentClient, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<Recovery> {
  if (coldProgress(journal).cold) return recoverLibvirtCold(vmName, source, target, journal);
  const claimed = journal.filter((e) => e.step === 'claimed').flatMap((e) => (Array.isArray(e.files) ? e.files.map(String) : []));
  const job = async (): Promise<string> => (await source.call('libvirt.jobInfo', { domain: vmName }).catch(() => ({ type: 'none' }))).type;
  const found = { source: await domainState(source, vmName), target: await domainState(target, vmName) };
  for (const deadline = Date.now() + JOB_WAIT_MS; Date.now() < deadline && !['none', 'completed', 'failed', 'cancelled'].includes(await job());) await sleep(1000);
  // A warm cut-over pauses the domain: libvirt moves it paused, and whoever finishes resumes it.
  const suspended = journal.some((e) => e.step === 'source-suspended');
  if (suspended && (await domainState(target, vmName)) === 'paused') await target.call('libvirt.resume', { domain: vmName });
  // --reboot stopped the guest on the source for its last pass: once it runs on the target that older copy goes.
  const rebooted = journal.some((e) => e.step === 'source-paused');
  if ((await domainRunning(target, vmName)) || (rebooted && journal.some((e) => e.step === 'committed'))) {
    // The finish the controller did not reach: the older copy stops, and goes from the source unless kept.
    if (rebooted) await removeOlderCopy(vmName, source, journal);
    if (hadAutostart(journal)) await carryAutostart(source, target, vmName, () => undefined);
    return { found, settlement: { outcome: 'committed', source: (await domainState(source, vmName)) ?? 'undefined' } };
  }
  if (journal.some((e) => e.step === 'mode' && e.mode === 'warm') && found.source !== null && found.source !== 'shut off') {
    // The pre-copy's NBD nodes and jobs leave the source's QEMU; its images stay on the target for the next run.
    const disks = journal.find((e) => e.step === 'vm')?.disks;
    await clearLeftovers(
      domainMonitor(() => source, vmName),
      (Array.isArray(disks) ? disks : []).map((_, index) => ({ index })),
    ).catch(() => undefined);
    if (suspended || rebooted) await source.call('libvirt.resume', { domain: vmName });
  }
  const leftovers: string[] = [];
  for (const path of claimed) {
    if (!(await target.call('file.stat', { path })).exists) continue;
    if ((await target.call('process.holding', { path })).pids.length) continue;
    await target.call('file.remove', { path });
    leftovers.push(path);
  }
  // A volume made in a pool and removed again: the target's pool forgets it.
  const disks = (journal.find((e) => e.step === 'vm')?.disks ?? []) as Array<{ path: string; volume?: { pool: string } }>;
  for (const pool of new Set(disks.flatMap((d) => (d.volume && leftovers.includes(d.path) ? [d.volume.pool] : [])))) {
    await target.call('libvirt.poolRefresh', { pool }).catch(() => undefined);
  }
  leftovers.push(...(await removeClaimedLvs(target, claimedLvs(journal), () => undefined)));
  leftovers.push(...(await removeLeftSecrets(target, vmName, journal)));
  if (found.target === null && !leftovers.length && found.source === 'running') return { found };
  return {
    found: { ...found, target: found.target ?? (leftovers.length ? 'images' : null) },
    settlement: { outcome: 'aborted', source: (await domainRunning(source, vmName)) ? 'running' : 'not running' },
  };
}

/** The domain started with its host when the move found it. */
function hadAutostart(journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): boolean {
  return journal.some((e) => e.step === 'vm' && e.autostart === true);
}

/**
 * After a --reboot committed on the target: the source's copy (held
 * stopped for the last pass, never to run again) is destroyed and, unless
 * the move kept the source's definition, undefined; its definition is in
 * the journal and its disks stay.
 */
async function removeOlderCopy(vmName: string, source: AgentClient, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<void> {
  const state = await domainState(source, vmName);
  if (state === null) return;
  if (state !== 'shut off') await source.call('libvirt.destroy', { domain: vmName });
  if (!journal.some((e) => e.step === 'start' && e.keep_source_definition)) await source.call('libvirt.undefine', { domain: vmName });
}

/**
 * A cold move: a domain running on the target stays there; otherwise its
 * definition there (if made) goes, and a domain ferry powered off runs
 * again on the source. What was copied stays: the same command continues.
 */
async function recoverLibvirtCold(vmName: string, source: AgentClient, target: AgentClient, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<Recovery> {
  const progress = coldProgress(journal);
  const found = { source: await domainState(source, vmName), target: await domainState(target, vmName) };
  if (found.target === 'running' || (found.target !== null && progress.startedOnTarget)) {
    // The finish the controller did not reach: the source's definition goes, unless the move kept it; its disks stay.
    if (found.source === 'shut off' && !journal.some((e) => e.step === 'start' && e.keep_source_definition)) await source.call('libvirt.undefine', { domain: vmName });
    if (hadAutostart(journal)) await carryAutostart(source, target, vmName, () => undefined);
    return { found, settlement: { outcome: 'committed', source: (await domainState(source, vmName)) ?? 'undefined' } };
  }
  let acted = false;
  if (found.target !== null && progress.madeOnTarget) {
    await target.call('libvirt.undefine', { domain: vmName });
    acted = true;
  }
  if ((await removeLeftSecrets(target, vmName, journal)).length) acted = true;
  if (progress.stoppedSource && found.source === 'shut off') {
    await source.call('libvirt.start', { domain: vmName });
    acted = true;
  }
  return acted ? { found, settlement: { outcome: 'aborted', source: (await domainState(source, vmName)) ?? 'undefined' } } : { found };
}

/**
 * The secrets the move defined on the target (--copy-secrets) and that are
 * still there, undefined: the domain that needed them did not end up there.
 * Their UUIDs, as leftovers.
 */
async function removeLeftSecrets(target: AgentClient, vmName: string, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<string[]> {
  const claimed = claimedSecrets(journal);
  if (!claimed.length) return [];
  const defined = (await target.call('libvirt.admission', { domain: vmName, secrets: true })).secrets ?? [];
  const left = claimed.filter((uuid) => defined.some((d) => d.uuid === uuid.toLowerCase()));
  await removeSecrets(target, left, () => undefined);
  return left.map((uuid) => `secret ${uuid}`);
}
