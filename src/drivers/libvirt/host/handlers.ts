/**
 * The agent's methods for libvirt on its host: what libvirt runs and can
 * run there, and the few acts on a domain a migration needs. Each one runs
 * virsh against `uri` (libvirt's system connection unless given), so that
 * libvirt keeps its own view of every domain it owns.
 */
import { readFile } from 'node:fs/promises';
import { FerryError, messageOf } from '../../../util/errors.js';
import { sleep } from '../../../util/abort.js';
import { domainCpuXml, parseDomainXml, type DomainDescription } from '../domain-xml.js';
import {
  parseCapabilities,
  type HostCapabilities,
  parseCpuCompare,
  parseDomJobInfoRaw,
  parseDomState,
  parseNameList,
  parseSecretList,
  type SecretEntry,
  parsePoolTargetPath,
  parseQmpReply,
  parseVersion,
  type CpuComparison,
  type DomainJobInfo,
  type LibvirtVersion,
  VIRSH_FAILURE_KINDS,
} from '../virsh-output.js';
import { listLinuxBridges, type LinuxBridge } from './bridges.js';
import { weakestAuthTcp } from '../libvirtd-conf.js';
import { virsh, virshBatch, virshFailureError, withXmlFile, type VirshResult } from './virsh.js';

/** Every method takes the libvirt connection URI; qemu:///system when left out. */
export interface OnConnection {
  uri?: string;
}

/**
 * Which of a domain's XMLs: the live one while it runs unless `inactive`
 * asks for its definition; `migratable` leaves out what libvirt added by
 * default, as libvirt itself does for a migration.
 */
export interface XmlVariant {
  inactive?: boolean;
  migratable?: boolean;
}

/** A domain: its name or UUID. */
export interface OnDomain extends OnConnection {
  domain: string;
}

export type LibvirtAvailability = ({ available: true } & LibvirtVersion) | { available: false; message: string; hint?: string };

export interface LibvirtDomain {
  name: string;
  /** running, paused, shut off... */
  state: string;
  /** Why it is in that state: booted, migrated, destroyed, failed... */
  reason?: string;
  /** Defined (survives a stop) or transient (gone when it stops). */
  persistent: boolean;
  /** From its live XML while it runs, else from its definition; volume disks carry their volume's path when the pool is active. */
  description: DomainDescription;
}

/** libvirt.domain's answer: the domain, and what else was asked of the same virsh. */
export type FoundDomain = LibvirtDomain & {
  /** libvirt starts it when the host boots (virsh autostart). */
  autostart: boolean;
  /** It is shut off with its running state saved to disk (virsh managedsave), which its next start resumes. */
  managedSave: boolean;
  /** The names of its snapshots that libvirt keeps metadata of (virsh snapshot-list). */
  snapshots: string[];
  /** The XMLs asked for, in the order asked. */
  xmls?: string[];
  /** This host as libvirt describes it: its UUID and CPU. */
  host?: HostCapabilities;
};

/** What a target's libvirtd says of a domain about to come (libvirt.admission). */
export interface Admission {
  hostUuid: string;
  /** The state of a domain of that name there already; null: none. */
  state: string | null;
  /** Whether its hypervisor can give the domain its CPU; left out when no XML was given. */
  cpu?: CpuCheck;
  networks?: Array<Omit<LibvirtNetwork, 'autostart'>>;
  bridges?: LinuxBridge[];
  /** With `tcpAuth`: how its libvirt authenticates TCP clients (auth_tcp, the weakest of its daemons'). */
  tcpAuth?: string;
  /** With `pools`: each of those storage pools there. */
  pools?: TargetPool[];
  /** With `secrets`: the libvirt secrets defined there (their values stay there). */
  secrets?: SecretEntry[];
}

export interface TargetPool {
  name: string;
  defined: boolean;
  active: boolean;
  /** The directory (or device directory) its volumes are in; unknown when it is not defined. */
  path?: string;
}

export interface LibvirtNetwork {
  name: string;
  active: boolean;
  autostart: boolean;
}

export type CpuCheck = CpuComparison & {
  /** Set when libvirt's verdict does not answer the question (a host-passthrough CPU, no CPU at all). */
  note?: string;
};

/** Where the daemons that take remote clients keep their settings: the monolithic libvirtd, and virtproxyd of the modular ones. */
const REMOTE_DAEMON_CONFS = ['/etc/libvirt/libvirtd.conf', '/etc/libvirt/virtproxyd.conf'];

export const libvirtHandlers = {
  /** Whether libvirt answers at `uri`, and its versions; a missing virsh or daemon is an answer, not an error. */
  'libvirt.available': async (p: OnConnection): Promise<LibvirtAvailability> => {
    try {
      const r = await virsh(p.uri, ['version', '--daemon'], { timeoutMs: 15_000 });
      return { available: true, ...parseVersion(r.stdout) };
    } catch (e) {
      return { available: false, message: messageOf(e), hint: e instanceof FerryError ? e.hint : undefined };
    }
  },

  /** libvirt's UUID for this host (`virsh capabilities`): libvirt refuses to migrate between two hosts with the same. */
  'libvirt.hostUuid': async (p: OnConnection): Promise<{ uuid: string }> => {
    return { uuid: parseCapabilities((await virsh(p.uri, ['capabilities'])).stdout).uuid };
  },

  /** This host's CPU as libvirt describes it: a host-passthrough guest sees it, so compare it on the target with libvirt.cpuCompare. */
  'libvirt.hostCpu': async (p: OnConnection): Promise<{ xml: string; arch?: string }> => {
    const caps = parseCapabilities((await virsh(p.uri, ['capabilities'])).stdout);
    return { xml: caps.cpuXml ?? '', arch: caps.arch };
  },

  /** Every domain, running or not: two virsh calls, however many there are. */
  'libvirt.domains': async (p: OnConnection): Promise<LibvirtDomain[]> => {
    const [all, transient] = await virshBatch(p.uri, [
      ['list', '--all', '--name'],
      ['list', '--all', '--transient', '--name'],
    ]);
    const transientNames = new Set(parseNameList(transient!.stdout));
    const names = parseNameList(all!.stdout);
    // A domain undefined since the list fails its questions, and is left out.
    const answers = await virshBatch(
      p.uri,
      names.flatMap((name) => [_stateArgs(name), _dumpXmlArgs(name)]),
      { tolerate: ['no-domain'] },
    );
    const domains = await Promise.all(names.map((name, i) => _describe(p.uri, name, !transientNames.has(name), answers[2 * i]!, answers[2 * i + 1]!)));
    return domains.filter((d) => d !== undefined);
  },

  /**
   * One domain, or undefined when there is none of that name: cheaper than
   * listing all. `xmls` asks for more of its XMLs (as libvirt.dumpxml), and
   * `host` for this host's UUID and CPU (as libvirt.hostUuid and
   * libvirt.hostCpu), in the same virsh call.
   */
  'libvirt.domain': async (p: OnDomain & { xmls?: readonly XmlVariant[]; host?: boolean }): Promise<FoundDomain | undefined> => {
    const xmls = p.xmls ?? [];
    // One virsh for all (a move waits on this): a domain that is not there fails each question.
    const [info, state, xml, snapshots, ...rest] = await virshBatch(
      p.uri,
      [
        ['dominfo', '--domain', p.domain],
        _stateArgs(p.domain),
        _dumpXmlArgs(p.domain),
        ['snapshot-list', '--name', '--domain', p.domain],
        ...xmls.map((v) => _dumpXmlArgs(p.domain, v)),
        ...(p.host ? [['capabilities']] : []),
      ],
      { tolerate: ['no-domain'] },
    );
    if (info!.failure) return undefined;
    const variants = rest.slice(0, xmls.length);
    const domain = await _describe(p.uri, p.domain, /^Persistent:\s+yes/m.test(info!.stdout), state!, xml!);
    if (!domain || snapshots!.failure || variants.some((v) => v.failure)) return undefined;
    return {
      ...domain,
      autostart: /^Autostart:\s+enable/m.test(info!.stdout),
      managedSave: /^Managed save:\s+yes/m.test(info!.stdout),
      snapshots: parseNameList(snapshots!.stdout),
      ...(p.xmls ? { xmls: variants.map((v) => v.stdout) } : {}),
      ...(p.host ? { host: parseCapabilities(rest[xmls.length]!.stdout) } : {}),
    };
  },

  /**
   * What this host's libvirtd says of a domain about to come, in one virsh:
   * its host UUID, the state of a domain already there by that name (null:
   * none), whether its hypervisor can give the CPU of `xml` (a domain's XML
   * or a CPU element, with `virtType` and `arch` as libvirt.cpuCompare), and
   * with `networks` its virtual networks and Linux bridges; with `pools`
   * whether each of those storage pools is defined and active there, and
   * the directory its volumes are in; with `tcpAuth` how its daemons
   * authenticate TCP clients (read from their config).
   */
  'libvirt.admission': async (p: OnDomain & { xml?: string; virtType?: string; arch?: string; networks?: boolean; pools?: string[]; tcpAuth?: boolean; secrets?: boolean }): Promise<Admission> => {
    const cpu = p.xml === undefined ? undefined : _cpuQuestion({ xml: p.xml, virtType: p.virtType, arch: p.arch });
    const pools = p.pools ?? [];
    const networksAt = 2;
    const poolsAt = networksAt + (p.networks ? 2 : 0);
    const secretsAt = poolsAt + (pools.length ? 2 + pools.length : 0);
    const commands = [
      ['domstate', '--domain', p.domain],
      ['capabilities'],
      ...(p.networks ? [_netListArgs(['--all']), _netListArgs([])] : []),
      ...(pools.length ? [['pool-list', '--all', '--name'], ['pool-list', '--name'], ...pools.map((pool) => ['pool-dumpxml', '--pool', pool])] : []),
      ...(p.secrets ? [['secret-list']] : []),
    ];
    // Every failure comes back, and is judged below as if its command had run alone.
    const ask = (extra: string[][]): Promise<VirshResult[]> => virshBatch(p.uri, [...commands, ...extra], { tolerate: [...VIRSH_FAILURE_KINDS] });
    const results = cpu && 'args' in cpu ? await withXmlFile(cpu.cpuXml, (file) => ask([[...cpu.args, '--file', file]])) : await ask([]);
    const output = async (i: number): Promise<string> => {
      const r = results[i]!;
      if (r.failure) throw await virshFailureError(p.uri, commands[i]!, r);
      return r.stdout;
    };
    const admission: Admission = {
      hostUuid: parseCapabilities(await output(1)).uuid,
      state: results[0]!.failure?.kind === 'no-domain' ? null : parseDomState(await output(0)).state,
    };
    if (p.networks) {
      const active = parseNameList(await output(networksAt + 1));
      admission.networks = parseNameList(await output(networksAt)).map((name) => ({ name, active: active.includes(name) }));
      admission.bridges = await listLinuxBridges();
    }
    if (pools.length) {
      const defined = parseNameList(await output(poolsAt));
      const active = parseNameList(await output(poolsAt + 1));
      admission.pools = pools.map((name, i) => {
        const xml = results[poolsAt + 2 + i]!;
        return { name, defined: defined.includes(name), active: active.includes(name), path: xml.failure ? undefined : parsePoolTargetPath(xml.stdout) };
      });
    }
    if (p.secrets) admission.secrets = parseSecretList(await output(secretsAt));
    if (cpu) admission.cpu = 'answer' in cpu ? cpu.answer : await _cpuVerdict(p.uri, cpu.args, results[commands.length]!);
    if (p.tcpAuth) admission.tcpAuth = weakestAuthTcp(await Promise.all(REMOTE_DAEMON_CONFS.map((f) => readFile(f, 'utf8').catch(() => undefined))));
    return admission;
  },

  /** Has libvirt read a storage pool's volumes again: one ferry made or removed there is then known to it (or no longer). */
  'libvirt.poolRefresh': async (p: OnConnection & { pool: string }): Promise<void> => {
    await virsh(p.uri, ['pool-refresh', '--pool', p.pool]);
  },

  /**
   * Only the domain's state (running, shut off, ...): one question where
   * libvirt.domain asks three. `completedJob` adds, in the same virsh, the
   * statistics of its last completed job (as libvirt.jobInfo), or none when
   * libvirt has none to give.
   */
  'libvirt.state': async (p: OnDomain & { completedJob?: boolean }): Promise<{ state: string; completedJob?: DomainJobInfo } | undefined> => {
    // Every failure comes back: the state's is judged here, and the statistics are only wanted if there are any.
    const [r, job] = await virshBatch(p.uri, [['domstate', '--domain', p.domain], ...(p.completedJob ? [_jobInfoArgs(p.domain, true)] : [])], { tolerate: [...VIRSH_FAILURE_KINDS] });
    if (r!.failure?.kind === 'no-domain') return undefined;
    if (r!.failure) throw await virshFailureError(p.uri, ['domstate', '--domain', p.domain], r!);
    return { state: parseDomState(r!.stdout).state, ...(job && !job.failure ? { completedJob: parseDomJobInfoRaw(job.stdout) } : {}) };
  },

  /** One of the domain's XMLs (XmlVariant). */
  'libvirt.dumpxml': async (p: OnDomain & XmlVariant): Promise<{ xml: string }> => {
    return { xml: (await virsh(p.uri, _dumpXmlArgs(p.domain, p))).stdout };
  },

  /** Defines (or redefines, same name and UUID) a domain from its XML; `validate` checks it against libvirt's schema first. */
  'libvirt.define': async (p: OnConnection & { xml: string; validate?: boolean }): Promise<{ name: string; uuid: string }> => {
    const { name } = parseDomainXml(p.xml);
    await withXmlFile(p.xml, (file) => virsh(p.uri, ['define', ...(p.validate ? ['--validate'] : []), '--file', file]));
    const uuid = (await virsh(p.uri, ['domuuid', '--domain', name])).stdout.trim();
    return { name, uuid };
  },

  /**
   * Removes the domain's definition; a running domain goes on as a
   * transient one. Its UEFI variable store and its TPM's state stay (libvirt
   * would remove the TPM's by default): they may be the only copies, and a
   * move removes them itself, with --delete-source. A virsh older than 8.9
   * knows no --keep-tpm (its libvirt removes the state regardless; a move
   * has copied it by then).
   */
  'libvirt.undefine': async (p: OnDomain): Promise<void> => {
    const args = ['undefine', '--keep-nvram', '--keep-tpm', '--domain', p.domain];
    const r = await virsh(p.uri, args, { tolerate: ['other'] });
    if (!r.failure) return;
    if (!/doesn't support option --keep-tpm/.test(r.failure.message)) throw await virshFailureError(p.uri, args, r);
    await virsh(p.uri, ['undefine', '--keep-nvram', '--domain', p.domain]);
  },

  /** Has libvirt start the domain when the host boots, or (`enable` false) no longer. */
  'libvirt.autostart': async (p: OnDomain & { enable: boolean }): Promise<void> => {
    await virsh(p.uri, ['autostart', ...(p.enable ? [] : ['--disable']), '--domain', p.domain]);
  },

  /** Starts a defined domain; one already running is left as it is. */
  'libvirt.start': async (p: OnDomain & { paused?: boolean }): Promise<{ alreadyRunning: boolean }> => {
    const r = await virsh(p.uri, ['start', ...(p.paused ? ['--paused'] : []), '--domain', p.domain], { tolerate: ['already-running'] });
    return { alreadyRunning: r.failure !== undefined };
  },

  /** Stops the domain at once (its QEMU is killed); `graceful` gives QEMU time to flush. One not running is no error. */
  'libvirt.destroy': async (p: OnDomain & { graceful?: boolean }): Promise<{ wasRunning: boolean }> => {
    const r = await virsh(p.uri, ['destroy', ...(p.graceful ? ['--graceful'] : []), '--domain', p.domain], { tolerate: ['not-running'] });
    return { wasRunning: r.failure === undefined };
  },

  /** Pauses the domain's vCPUs (its QEMU stays, and so do its disks and RAM); one paused already is no error. */
  'libvirt.suspend': async (p: OnDomain): Promise<void> => {
    if (parseDomState((await virsh(p.uri, ['domstate', '--domain', p.domain])).stdout).state === 'paused') return;
    await virsh(p.uri, ['suspend', '--domain', p.domain]);
  },

  /** Lets a paused domain run again; returns whether it was paused (one running already is no error). */
  'libvirt.resume': async (p: OnDomain): Promise<{ wasPaused: boolean }> => {
    if (parseDomState((await virsh(p.uri, ['domstate', '--domain', p.domain])).stdout).state !== 'paused') return { wasPaused: false };
    await virsh(p.uri, ['resume', '--domain', p.domain]);
    return { wasPaused: true };
  },

  /**
   * One QMP command on the domain's QEMU (`virsh qemu-monitor-command`),
   * its `return` value answered; a QMP error becomes a FerryError with
   * QEMU's message. libvirt marks the domain "tainted" (custom-monitor) for
   * it: a note in its log, no change to how libvirt runs the domain. ferry
   * accepts that for a warm move's passes, which libvirt has no API for.
   */
  'libvirt.qmp': async (p: OnDomain & { command: string; args?: Record<string, unknown> }): Promise<unknown> => {
    const request = JSON.stringify({ execute: p.command, ...(p.args ? { arguments: p.args } : {}) });
    const r = await virsh(p.uri, ['qemu-monitor-command', '--domain', p.domain, request]);
    return parseQmpReply(p.command, r.stdout);
  },

  /** Asks the guest to power off (ACPI); with `waitMs`, waits that long for it to be shut off. Returns the state then. */
  'libvirt.shutdown': async (p: OnDomain & { waitMs?: number; request?: boolean }): Promise<{ state: string }> => {
    // request: false only waits for a power-off asked for before.
    if (p.request !== false) await virsh(p.uri, ['shutdown', '--domain', p.domain], { tolerate: ['not-running'] });
    const deadline = Date.now() + (p.waitMs ?? 0);
    for (;;) {
      const { state } = parseDomState((await virsh(p.uri, ['domstate', '--domain', p.domain])).stdout);
      if (state === 'shut off' || Date.now() >= deadline) return { state };
      await sleep(250);
    }
  },

  /**
   * The domain's current job, or with `completed` the last one that ended
   * (kept for a later read too; a failed job's statistics included; a
   * migrated-away domain keeps them while defined). Exact figures: read
   * from --rawstats.
   */
  'libvirt.jobInfo': async (p: OnDomain & { completed?: boolean }): Promise<DomainJobInfo> => {
    // A domain that does not run has no current job (virsh calls that an error).
    const r = await virsh(p.uri, _jobInfoArgs(p.domain, p.completed), { tolerate: ['not-running'] });
    return r.failure ? { type: 'none', other: {} } : parseDomJobInfoRaw(r.stdout);
  },

  /** Aborts the domain's current job (a migration: the source keeps running); false when there was none. */
  'libvirt.jobAbort': async (p: OnDomain): Promise<{ aborted: boolean }> => {
    const r = await virsh(p.uri, ['domjobabort', '--domain', p.domain], { tolerate: ['no-job'] });
    return { aborted: r.failure === undefined };
  },

  /**
   * Whether a CPU can run under this host's hypervisor: `xml` is a domain's
   * XML (its <cpu> is compared, with its type and arch) or a CPU element
   * (another host's, from libvirt.hostCpu). A host-passthrough guest's own
   * <cpu> says nothing about what it sees: compare its source host's CPU.
   */
  'libvirt.cpuCompare': async (p: OnConnection & { xml: string; virtType?: string; arch?: string }): Promise<CpuCheck> => {
    const question = _cpuQuestion(p);
    if ('answer' in question) return question.answer;
    const r = await withXmlFile(question.cpuXml, (file) => virsh(p.uri, [...question.args, '--file', file], { tolerate: ['cpu-incompatible', 'other'] }));
    return _cpuVerdict(p.uri, question.args, r);
  },

  /** libvirt's virtual networks, active or not. */
  'libvirt.networks': async (p: OnConnection): Promise<LibvirtNetwork[]> => {
    const [all, active, autostart] = await Promise.all([['--all'], [], ['--all', '--autostart']].map((filter) => virsh(p.uri, _netListArgs(filter)).then((r) => parseNameList(r.stdout))));
    return all!.map((name) => ({ name, active: active!.includes(name), autostart: autostart!.includes(name) }));
  },

  /** The Linux bridges on this host, for domains whose interfaces attach to one directly. */
  'libvirt.bridges': async (): Promise<LinuxBridge[]> => listLinuxBridges(),
};

/**
 * What `virsh hypervisor-cpu-compare` must be asked about a CPU (`xml`: a
 * domain's XML or a CPU element), or the answer when there is nothing to
 * compare.
 */
function _cpuQuestion(p: { xml: string; virtType?: string; arch?: string }): { answer: CpuCheck } | { cpuXml: string; args: string[] } {
  let cpuXml = p.xml;
  let virtType = p.virtType;
  let arch = p.arch;
  if (/^\s*(<\?xml[^>]*>\s*)?<domain[\s>]/.test(p.xml)) {
    const domain = parseDomainXml(p.xml);
    virtType ??= domain.type;
    arch ??= domain.os.arch;
    const cpu = domainCpuXml(p.xml);
    if (!cpu) return { answer: { verdict: 'superset', accepted: true, missingFeatures: [], forbiddenFeatures: [], note: "the domain has no <cpu>: it gets the hypervisor's default model" } };
    if (domain.cpu?.mode === 'host-passthrough' || domain.cpu?.mode === 'maximum') {
      return {
        answer: {
          verdict: 'superset',
          accepted: true,
          missingFeatures: [],
          forbiddenFeatures: [],
          note: `a ${domain.cpu.mode} CPU is whatever the host has: compare the source host's CPU (libvirt.hostCpu there) instead`,
        },
      };
    }
    cpuXml = cpu;
  }
  return { cpuXml, args: ['hypervisor-cpu-compare', '--error', ...(virtType ? ['--virttype', virtType] : []), ...(arch ? ['--arch', arch] : [])] };
}

/** libvirt's verdict from what hypervisor-cpu-compare printed; a failure that is no verdict is thrown. */
async function _cpuVerdict(uri: string | undefined, args: readonly string[], r: VirshResult): Promise<CpuCheck> {
  const comparison = parseCpuCompare(r);
  if (comparison) return comparison;
  throw await virshFailureError(uri, args, r);
}

function _netListArgs(filter: readonly string[]): string[] {
  return ['net-list', ...filter, '--name'];
}

/** virsh's arguments for one of the domain's XMLs. */
function _dumpXmlArgs(domain: string, variant: XmlVariant = {}): string[] {
  return ['dumpxml', ...(variant.inactive ? ['--inactive'] : []), ...(variant.migratable ? ['--migratable'] : []), '--domain', domain];
}

function _jobInfoArgs(domain: string, completed = false): string[] {
  return ['domjobinfo', '--rawstats', ...(completed ? ['--completed', '--keep-completed', '--anystats'] : []), '--domain', domain];
}

function _stateArgs(domain: string): string[] {
  return ['domstate', '--reason', '--domain', domain];
}

/** The domain from its state and XML as virsh printed them; undefined when it went away before virsh asked. */
async function _describe(uri: string | undefined, name: string, persistent: boolean, state: VirshResult, xml: VirshResult): Promise<LibvirtDomain | undefined> {
  if (state.failure || xml.failure) return undefined;
  const description = parseDomainXml(xml.stdout);
  await Promise.all(
    description.disks.map(async (disk) => {
      if (disk.type !== 'volume' || !disk.pool || !disk.volume) return;
      // An inactive pool has no path to give: the disk stays without one.
      const r = await virsh(uri, ['vol-path', '--pool', disk.pool, disk.volume], { tolerate: ['other'] });
      if (!r.failure) disk.path = r.stdout.trim();
    }),
  );
  return { name, ...parseDomState(state.stdout), persistent, description };
}
