/** libvirt domains on a host, through its agent: found, described, and how other hosts reach its libvirtd. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { HostConfig } from '../../hosts/inventory.js';
import type { ImageInfo } from '../../storage/image-info.js';
import type { BlockMonitor, DiskPlan, StepJournal } from '../driver.js';
import { sleep } from '../../util/abort.js';
import { FerryError, messageOf } from '../../util/errors.js';
import { liveAgent } from '../../hosts/live-agent.js';
import { staysVolume, type DomainDescription } from './domain-xml.js';
import type { FoundDomain, XmlVariant } from './host/handlers.js';
import { describeDomain, type DomainVmInfo } from './inspect.js';

export async function libvirtAvailable(host: AgentClient): Promise<boolean> {
  return (await host.call('libvirt.available', {}).catch(() => ({ available: false }))).available;
}

async function imagesOf(host: AgentClient, description: DomainDescription): Promise<Map<string, ImageInfo[]>> {
  const images = new Map<string, ImageInfo[]>();
  for (const disk of description.disks) {
    if (!disk.path || disk.type === 'network') continue;
    const chain = await host.call('image.chain', { path: disk.path }).catch(() => undefined);
    if (chain) images.set(disk.path, chain);
  }
  return images;
}

/** Every domain on the host, running or shut off, in the driver-neutral shape. */
export async function listDomains(host: AgentClient): Promise<DomainVmInfo[]> {
  if (!(await libvirtAvailable(host))) return [];
  const out: DomainVmInfo[] = [];
  for (const d of await host.call('libvirt.domains', {})) out.push(describeDomain(d, await imagesOf(host, d.description)));
  return out;
}

/** What findDomain may ask of the same virsh call, or an answer it was given instead. */
export interface FindOptions {
  xmls?: readonly XmlVariant[];
  host?: boolean;
  /** libvirt.domain's answer, asked moments before: not asked again. */
  answer?: FoundDomain;
}

/**
 * The domain named, described with its disks' images; refuses a disk ferry
 * cannot move. `xmls` and `host` ask for those at the same time.
 */
export async function findDomain(host: AgentClient, name: string, options: FindOptions = {}): Promise<{ vm: DomainVmInfo; domain: DomainDescription; found: FoundDomain }> {
  const found = options.answer ?? (await host.call('libvirt.domain', { domain: name, xmls: options.xmls, host: options.host }));
  if (!found) {
    const domains = await host.call('libvirt.domains', {});
    throw new FerryError('UNKNOWN_VM', `Unknown domain "${name}" on host "${host.host.name}"`, {
      hint: domains.length ? `domains there: ${domains.map((d) => d.name).join(', ')}` : `libvirt there has no domain; see "ferry vm list ${host.host.name}"`,
    });
  }
  const vm = describeDomain(found, await imagesOf(host, found.description));
  const [unmovable] = vm.unmovableDisks;
  if (unmovable) {
    throw new FerryError('USAGE', `Disk ${unmovable.target} of domain "${name}" cannot be moved: ${unmovable.reason}`, {
      hint: 'detach it first (virsh detach-disk), or move its storage by other means',
    });
  }
  return { vm, domain: found.description, found };
}

/** The domain a move starts from, found and written down in the move's journal; one that cannot move whole is refused. */
export async function describeForMove(host: AgentClient, name: string, journal: StepJournal, options: FindOptions = {}): Promise<{ vm: DomainVmInfo; domain: DomainDescription; found: FoundDomain }> {
  const described = await findDomain(host, name, options);
  refuseUnmovable(described.found, host.host.name);
  const { vm } = described;
  journal.record('vm', {
    driver: 'libvirt',
    state: vm.state,
    memory: vm.memoryBytes,
    disks: vm.disks.map((d) => ({ path: d.path, format: d.format, size: d.virtualSize, ...(d.volume ? { volume: d.volume } : {}) })),
    ...(described.found.autostart ? { autostart: true } : {}),
  });
  return described;
}

/**
 * What a move would lose, refused before anything is made: snapshots (libvirt
 * keeps their metadata on the host and migrates no domain that has any; a
 * copy of the disk's current state would leave their states behind), and a
 * running state saved to disk (a cold move would boot the domain afresh).
 */
export function refuseUnmovable(found: FoundDomain, host: string): void {
  const { name, snapshots } = found;
  if (snapshots.length) {
    throw new FerryError(
      'INCOMPATIBLE',
      `Domain "${name}" on "${host}" has ${snapshots.length === 1 ? 'a snapshot' : `${snapshots.length} snapshots`} (${snapshots.join(', ')}), which would not come along: libvirt migrates no domain with snapshots`,
      { hint: `keep it where it is, or delete its snapshots first ("virsh snapshot-delete ${name} --snapshotname NAME" merges one away), then move it` },
    );
  }
  if (found.managedSave) {
    throw new FerryError('INCOMPATIBLE', `Domain "${name}" on "${host}" is shut off with its running state saved (virsh managedsave): moved so, it would boot afresh and that state would be lost`, {
      hint: `resume it ("virsh start ${name}") and move it live, or drop the saved state ("virsh managedsave-remove ${name}") to move it shut off`,
    });
  }
}

/**
 * libvirt's migration, and a define, leave autostart behind: once the target
 * owns a domain that had it, the target's definition gets it, and a
 * definition left on the source loses it (both hosts would start the domain
 * when they boot). Failures are said, not thrown: the domain has moved.
 */
export async function carryAutostart(source: AgentClient, target: AgentClient, name: string, log: (message: string) => void): Promise<void> {
  const set = (host: AgentClient, enable: boolean, done: string): Promise<void> =>
    host.call('libvirt.autostart', { domain: name, enable }).then(
      () => log(done),
      (e: unknown) => log(`could not ${enable ? 'set' : 'clear'} autostart of ${name} on ${host.host.name}: ${messageOf(e)}; run "virsh autostart ${enable ? '' : '--disable '}${name}" there`),
    );
  await set(target, true, `autostart set on ${target.host.name}, as it was on ${source.host.name}`);
  if ((await domainState(source, name).catch(() => null)) !== null)
    await set(source, false, `autostart cleared on ${source.host.name}'s kept definition: only ${target.host.name} starts ${name} when it boots`);
}

/**
 * A running domain with a device passed through from its host (a PCI or
 * SCSI device, a mediated device, a host TPM, a virtiofs share) cannot move live:
 * libvirt refuses in its job, after the target's images were made.
 */
export function refuseLivePassthrough(domain: DomainDescription, host: string): void {
  const [device, ...more] = domain.passthrough;
  if (!device) return;
  throw new FerryError(
    'INCOMPATIBLE',
    `Domain "${domain.name}" on "${host}" has a ${device}${more.length ? ` (and ${more.length} more)` : ''} passed through: libvirt migrates no running domain with one`,
    {
      hint: `move it with --mode cold to a host that has the same device free, or detach it for the move ("virsh detach-device ${domain.name} --live --file DEVICE.xml") and attach it again on the target`,
    },
  );
}

/** The domain's state on the host (running, shut off, ...), null when it has none of that name. */
export async function domainState(host: AgentClient, name: string): Promise<string | null> {
  return (await host.call('libvirt.state', { domain: name }))?.state ?? null;
}

/**
 * Where a domain is once a failed move's job has ended: its state on the
 * host the agent serves, asked again (through a new agent when the link was
 * lost) until libvirt answers, since settling on a guess could leave the VM
 * with no owner or two. Throws when no answer comes.
 */
export async function stateAfterJob(agent: AgentClient, name: string, options: { tries?: number; pollMs?: number } = {}): Promise<{ agent: AgentClient; state: string | null }> {
  const tries = options.tries ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      agent = await liveAgent(agent.host, agent);
      return { agent, state: await domainState(agent, name) };
    } catch (e) {
      if (attempt >= tries) {
        throw new FerryError('AGENT_GONE', `Cannot tell whether domain "${name}" runs on "${agent.host.name}": ${messageOf(e)}`, {
          hint: `check "virsh domstate ${name}" there, then run "ferry recover"`,
        });
      }
      await sleep(options.pollMs ?? 500);
    }
  }
}

/**
 * The source's domain after its migration job ended without moving it:
 * running, or resumed if libvirt left it paused (an abort that reached it
 * in its last pause) when it ran before the move; any other state is what
 * remains of a domain whose QEMU went away.
 */
export async function sourceAfterAbort(agent: AgentClient, name: string, options: { ranBefore: boolean }): Promise<{ agent: AgentClient; state: string | null }> {
  const found = await stateAfterJob(agent, name);
  if (found.state !== 'paused' || !options.ranBefore) return found;
  await found.agent.call('libvirt.resume', { domain: name });
  return stateAfterJob(found.agent, name);
}

export async function domainRunning(host: AgentClient, name: string): Promise<boolean> {
  return (await domainState(host, name).catch(() => null)) === 'running';
}

/** How the source's libvirtd reaches this host's for a peer-to-peer migration: the inventory's libvirt_uri, else over ssh. */
export function libvirtUri(host: HostConfig): string {
  if (host.libvirtUri) return host.libvirtUri;
  if (host.transport === 'ssh') return `qemu+ssh://${host.ssh ?? host.name}/system`;
  return 'qemu:///system';
}

/** Seed 002's error: libvirt refuses to migrate between two libvirtds that share a host UUID. */
export function sameHostUuidError(source: string, target: string, uuid: string): FerryError {
  return new FerryError('SAME_HOST_UUID', `libvirt on "${source}" and on "${target}" has the same host UUID ${uuid}: libvirt would refuse ("attempt to migrate guest to the same host")`, {
    hint: `give one of them its own: set host_uuid = "$(uuidgen)" in /etc/libvirt/libvirtd.conf on "${target}" and restart libvirtd (identical SMBIOS UUIDs cause this)`,
  });
}

/** The QEMU monitor of a domain on the host, through libvirt's passthrough (libvirt.qmp). */
export function domainMonitor(host: () => AgentClient, domain: string): BlockMonitor {
  return { execute: async <T>(command: string, args?: Record<string, unknown>) => (await host().call('libvirt.qmp', { domain, command, args })) as T };
}

/** libvirt job types of a job still under way (virDomainJobType). */
const _ACTIVE_JOBS = ['bounded', 'unbounded'];

/**
 * Ends libvirt's migration job `id` of `domain` on the source, through
 * whichever agent the move has now. The agent that started `virsh migrate`
 * aborts it and waits for virsh. A new agent (the first was lost) does not
 * know it, yet libvirt's job goes on, driven by the orphaned virsh: the
 * domain's own job is aborted until libvirt reports none. Past libvirt's
 * point of no return the abort is refused and the job ends with the domain
 * on the target; either way, once this returns, the domain is where libvirt
 * left it.
 */
export async function endMigrationJob(source: AgentClient, id: string, domain: string, options: { timeoutMs?: number; pollMs?: number } = {}): Promise<void> {
  const ended = await source.call('libvirt.migrate.abort', { id }).catch(() => undefined);
  if (ended) return;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const job = await source.call('libvirt.jobInfo', { domain });
    if (!_ACTIVE_JOBS.includes(job.type)) return;
    if (Date.now() > deadline) {
      throw new FerryError('MIGRATION_FAILED', `libvirt's migration job of "${domain}" on "${source.host.name}" does not end`, {
        hint: `abort it with "virsh domjobabort ${domain}" on "${source.host.name}", then run "ferry recover ${id}"`,
      });
    }
    await source.call('libvirt.jobAbort', { domain }).catch(() => undefined);
    await sleep(options.pollMs ?? 500);
  }
}

/**
 * Has the target's libvirt read again the pools whose volumes ferry made in
 * place, for the disks that stay pool volumes: libvirt finds a volume
 * through its pool, which lists only what it has read.
 */
export async function refreshTargetPools(target: AgentClient, plans: readonly DiskPlan[], journal: StepJournal): Promise<void> {
  const volumes = plans.filter((p) => staysVolume(p) && !p.shared);
  if (!volumes.length) return;
  journal.record('pool-refresh', { host: target.host.name, pools: poolsOf(volumes) });
  await refreshPools(target, volumes);
}

/** As refreshPools, after the move's outcome is settled: a pool that cannot be read again is said, not fatal. */
export async function tidyPools(host: AgentClient, plans: readonly DiskPlan[], log: (message: string) => void): Promise<void> {
  await refreshPools(host, plans).catch((e: unknown) => log(`could not refresh the storage pools on ${host.host.name}: ${messageOf(e)}`));
}

/** Has libvirt on `host` read again the pools of the volume disks among `plans` (one made or removed there is then known, or no longer). */
export async function refreshPools(host: AgentClient, plans: readonly DiskPlan[]): Promise<void> {
  for (const pool of poolsOf(plans)) await host.call('libvirt.poolRefresh', { pool });
}

function poolsOf(plans: readonly DiskPlan[]): string[] {
  return [...new Set(plans.flatMap((p) => (p.disk.volume ? [p.disk.volume.pool] : [])))];
}
