/**
 * What virsh prints (libvirt 9.0), read into values: job statistics, domain
 * and network lists, domain states, the host's identity and CPU, CPU
 * comparisons and virsh's own errors.
 */
import { DOMParser, XMLSerializer, onErrorStopParsing, type Element } from '@xmldom/xmldom';
import { FerryError, messageOf } from '../../util/errors.js';

/** A domain job's statistics (`virsh domjobinfo`). Sizes are bytes, times milliseconds. */
export interface DomainJobInfo {
  /** none, bounded, unbounded (a migration), completed, failed, cancelled or unknown. */
  type: string;
  /** outgoing-migration, incoming-migration, save, restore, dump, snapshot, backup, start... */
  operation?: string;
  timeElapsedMs?: number;
  /** Elapsed time less the time the network took (set once completed). */
  timeElapsedNetMs?: number;
  timeRemainingMs?: number;
  /** Memory and disks together. */
  dataTotal?: number;
  dataProcessed?: number;
  dataRemaining?: number;
  memoryTotal?: number;
  memoryProcessed?: number;
  memoryRemaining?: number;
  memoryBytesPerSecond?: number;
  memoryDirtyPagesPerSecond?: number;
  memoryPageSize?: number;
  memoryIteration?: number;
  memoryPostcopyRequests?: number;
  memoryConstantPages?: number;
  memoryNormalPages?: number;
  memoryNormalBytes?: number;
  /** Disks copied by the migration (virsh calls them "File"). */
  diskTotal?: number;
  diskProcessed?: number;
  diskRemaining?: number;
  diskBytesPerSecond?: number;
  diskTempUsed?: number;
  diskTempTotal?: number;
  /** Expected downtime while the job runs, the downtime it had once completed. */
  downtimeMs?: number;
  downtimeNetMs?: number;
  setupTimeMs?: number;
  compressionCache?: number;
  compressionBytes?: number;
  compressionPages?: number;
  compressionCacheMisses?: number;
  compressionOverflows?: number;
  /** Percent of the guest's CPU time taken away to let the migration converge. */
  autoConvergeThrottle?: number;
  errorMessage?: string;
  /** Lines ferry does not know, as virsh printed them. */
  other: Record<string, string>;
}

type _NumericJobField = { [K in keyof DomainJobInfo]-?: DomainJobInfo[K] extends number | undefined ? K : never }[keyof DomainJobInfo];
type _JobValue = 'bytes' | 'ms' | 'count';

/** Each statistic: its field, virsh's label in the text output and libvirt's name in --rawstats. */
const _JOB_FIELDS: { field: _NumericJobField; labels: string[]; raw: string; value: _JobValue }[] = [
  { field: 'timeElapsedMs', labels: ['Time elapsed'], raw: 'time_elapsed', value: 'ms' },
  { field: 'timeElapsedNetMs', labels: ['Time elapsed w/o network'], raw: 'time_elapsed_net', value: 'ms' },
  { field: 'timeRemainingMs', labels: ['Time remaining'], raw: 'time_remaining', value: 'ms' },
  { field: 'dataTotal', labels: ['Data total'], raw: 'data_total', value: 'bytes' },
  { field: 'dataProcessed', labels: ['Data processed'], raw: 'data_processed', value: 'bytes' },
  { field: 'dataRemaining', labels: ['Data remaining'], raw: 'data_remaining', value: 'bytes' },
  { field: 'memoryTotal', labels: ['Memory total'], raw: 'memory_total', value: 'bytes' },
  { field: 'memoryProcessed', labels: ['Memory processed'], raw: 'memory_processed', value: 'bytes' },
  { field: 'memoryRemaining', labels: ['Memory remaining'], raw: 'memory_remaining', value: 'bytes' },
  { field: 'memoryBytesPerSecond', labels: ['Memory bandwidth'], raw: 'memory_bps', value: 'bytes' },
  { field: 'memoryDirtyPagesPerSecond', labels: ['Dirty rate'], raw: 'memory_dirty_rate', value: 'count' },
  { field: 'memoryPageSize', labels: ['Page size'], raw: 'memory_page_size', value: 'bytes' },
  { field: 'memoryIteration', labels: ['Iteration'], raw: 'memory_iteration', value: 'count' },
  { field: 'memoryPostcopyRequests', labels: ['Postcopy requests'], raw: 'memory_postcopy_requests', value: 'count' },
  { field: 'memoryConstantPages', labels: ['Constant pages'], raw: 'memory_constant', value: 'count' },
  { field: 'memoryNormalPages', labels: ['Normal pages'], raw: 'memory_normal', value: 'count' },
  { field: 'memoryNormalBytes', labels: ['Normal data'], raw: 'memory_normal_bytes', value: 'bytes' },
  { field: 'diskTotal', labels: ['File total'], raw: 'disk_total', value: 'bytes' },
  { field: 'diskProcessed', labels: ['File processed'], raw: 'disk_processed', value: 'bytes' },
  { field: 'diskRemaining', labels: ['File remaining'], raw: 'disk_remaining', value: 'bytes' },
  { field: 'diskBytesPerSecond', labels: ['File bandwidth'], raw: 'disk_bps', value: 'bytes' },
  { field: 'diskTempUsed', labels: ['Temporary disk space use'], raw: 'disk_temp_used', value: 'bytes' },
  { field: 'diskTempTotal', labels: ['Temporary disk space total'], raw: 'disk_temp_total', value: 'bytes' },
  { field: 'downtimeMs', labels: ['Expected downtime', 'Total downtime'], raw: 'downtime', value: 'ms' },
  { field: 'downtimeNetMs', labels: ['Downtime w/o network'], raw: 'downtime_net', value: 'ms' },
  { field: 'setupTimeMs', labels: ['Setup time'], raw: 'setup_time', value: 'ms' },
  { field: 'compressionCache', labels: ['Compression cache'], raw: 'compression_cache', value: 'bytes' },
  { field: 'compressionBytes', labels: ['Compressed data'], raw: 'compression_bytes', value: 'bytes' },
  { field: 'compressionPages', labels: ['Compressed pages'], raw: 'compression_pages', value: 'count' },
  { field: 'compressionCacheMisses', labels: ['Compression cache misses'], raw: 'compression_cache_misses', value: 'count' },
  { field: 'compressionOverflows', labels: ['Compression overflows'], raw: 'compression_overflow', value: 'count' },
  { field: 'autoConvergeThrottle', labels: ['Auto converge throttle'], raw: 'auto_converge_throttle', value: 'count' },
];

/** virDomainJobType, by number (--rawstats) and by virsh's word. */
const _JOB_TYPES = ['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled'];
/** virDomainJobOperation, by number; virsh's words are the same, spaced. */
const _JOB_OPERATIONS = ['unknown', 'start', 'save', 'restore', 'incoming-migration', 'outgoing-migration', 'snapshot', 'snapshot-revert', 'dump', 'backup', 'snapshot-delete'];

// vshPrettyCapacity's units; "bytes" is how the page size is written.
const _SIZE_UNITS: Record<string, number> = { B: 1, bytes: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50, EiB: 2 ** 60 };

/**
 * Reads `virsh domjobinfo DOM [--completed]`. Sizes there are rounded to a
 * thousandth of their unit (1.049 MiB); --rawstats (parseDomJobInfoRaw) has
 * them exact.
 */
export function parseDomJobInfo(text: string): DomainJobInfo {
  const info: DomainJobInfo = { type: 'unknown', other: {} };
  for (const [key, value] of _keyValueLines(text)) {
    if (key === 'Job type') info.type = value.toLowerCase();
    else if (key === 'Operation') info.operation = value.toLowerCase().replaceAll(' ', '-');
    else if (key === 'Error message') info.errorMessage = value;
    else {
      const known = _JOB_FIELDS.find((f) => f.labels.includes(key));
      const n = known && _readJobValue(value, known.value);
      if (known && n !== undefined) info[known.field] = n;
      else info.other[key] = value;
    }
  }
  return info;
}

/** Reads `virsh domjobinfo DOM --rawstats [--completed]`: libvirt's own names and exact numbers. */
export function parseDomJobInfoRaw(text: string): DomainJobInfo {
  const info: DomainJobInfo = { type: 'unknown', other: {} };
  for (const [key, value] of _keyValueLines(text)) {
    if (key === 'Job type') info.type = _JOB_TYPES[Number(value)] ?? `type ${value}`;
    else if (key === 'operation') info.operation = _JOB_OPERATIONS[Number(value)] ?? `operation ${value}`;
    else if (key === 'errmsg') info.errorMessage = value;
    else {
      const known = _JOB_FIELDS.find((f) => f.raw === key);
      if (known && /^\d+$/.test(value)) info[known.field] = Number(value);
      else info.other[key] = value;
    }
  }
  return info;
}

/** Where `virsh pool-dumpxml` says a storage pool keeps its volumes: its <target><path>. */
export function parsePoolTargetPath(xml: string): string | undefined {
  return /<target>\s*<path>([^<]+)<\/path>/.exec(xml)?.[1]?.trim();
}

/** The names `virsh list --all --name` or `virsh net-list --all --name` prints, one a line. */
export function parseNameList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** A secret as `virsh secret-list` prints it: its UUID, and its usage (type, then the usage name). */
export interface SecretEntry {
  uuid: string;
  type?: string;
  usage?: string;
}

/** Reads `virsh secret-list`: a header, a rule, then "UUID  TYPE USAGE-NAME" a line. */
export function parseSecretList(text: string): SecretEntry[] {
  const entries: SecretEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s*(\S+)?\s*(.*?)\s*$/i.exec(line);
    if (m) entries.push({ uuid: m[1]!.toLowerCase(), ...(m[2] ? { type: m[2] } : {}), ...(m[3] ? { usage: m[3] } : {}) });
  }
  return entries;
}

export interface DomainState {
  /** running, idle, paused, in shutdown, shut off, crashed or pmsuspended. */
  state: string;
  /** Why, with --reason: booted, migrated, user, destroyed, failed... */
  reason?: string;
}

/** Reads `virsh domstate [--reason] DOM`: "running (booted)", "shut off". */
export function parseDomState(text: string): DomainState {
  const m = /^(.+?)(?: \((.+)\))?$/.exec(text.trim());
  return { state: m?.[1] ?? text.trim(), reason: m?.[2] };
}

export interface LibvirtVersion {
  /** The libvirt library virsh uses, e.g. 9.0.0. */
  library?: string;
  /** The daemon's version (with --daemon). */
  daemon?: string;
  /** e.g. QEMU. */
  hypervisor?: string;
  hypervisorVersion?: string;
}

/** Reads `virsh version --daemon`. */
export function parseVersion(text: string): LibvirtVersion {
  const lines = new Map(_keyValueLines(text));
  const hypervisor = /^(\S+) (\S+)$/.exec(lines.get('Running hypervisor') ?? '');
  return {
    library: /(\d+\.\d+\.\d+)/.exec(lines.get('Using library') ?? '')?.[1],
    daemon: lines.get('Running against daemon'),
    hypervisor: hypervisor?.[1],
    hypervisorVersion: hypervisor?.[2],
  };
}

export interface HostCapabilities {
  /** The host's UUID as libvirt sees it: two names for one host share it, and libvirt refuses to migrate between hosts with the same. */
  uuid: string;
  arch?: string;
  /** The host's <cpu> element as its own document, for comparing a host-passthrough guest's CPU on another host. */
  cpuXml?: string;
}

/** Reads `virsh capabilities`. */
export function parseCapabilities(xml: string): HostCapabilities {
  let root: Element | null;
  try {
    root = new DOMParser({ onError: onErrorStopParsing }).parseFromString(xml, 'text/xml').documentElement;
  } catch (e) {
    throw new FerryError('BAD_FORMAT', `Cannot read libvirt's capabilities: ${messageOf(e)}`, { cause: e });
  }
  const host = root?.tagName === 'capabilities' ? root.getElementsByTagName('host')[0] : undefined;
  const uuid = host?.getElementsByTagName('uuid')[0]?.textContent?.trim();
  if (!host || !uuid) throw new FerryError('BAD_FORMAT', "Cannot read libvirt's capabilities: no /capabilities/host/uuid");
  const cpu = host.getElementsByTagName('cpu')[0];
  return {
    uuid,
    arch: cpu?.getElementsByTagName('arch')[0]?.textContent?.trim(),
    cpuXml: cpu ? new XMLSerializer().serializeToString(cpu) : undefined,
  };
}

/** Whether a guest CPU can run on a host, as `virsh hypervisor-cpu-compare` or `virsh cpu-compare` tell it. */
export interface CpuComparison {
  verdict: 'identical' | 'superset' | 'incompatible';
  accepted: boolean;
  /** Features the guest requires and the host lacks. */
  missingFeatures: string[];
  /** Features the guest forbids and the host has. */
  forbiddenFeatures: string[];
  /** libvirt's reason when incompatible (virsh prints it with --error). */
  message?: string;
}

/**
 * Reads a CPU comparison from virsh's output: the verdict line, and with
 * --error the reason on stderr. Undefined when virsh failed for another
 * reason (bad XML, no daemon).
 */
export function parseCpuCompare(output: { stdout: string; stderr: string }): CpuComparison | undefined {
  const reason = /the CPU is incompatible with host CPU: (.+)$/m.exec(output.stderr)?.[1]?.trim() ?? /error: .*(Unknown CPU model .+)$/im.exec(output.stderr)?.[1]?.trim();
  if (reason !== undefined) {
    return {
      verdict: 'incompatible',
      accepted: false,
      missingFeatures: _featureList(reason, /does not provide required features: (.+)$/),
      forbiddenFeatures: _featureList(reason, /provides forbidden features: (.+)$/),
      message: reason,
    };
  }
  const line = output.stdout.trim();
  const verdict = / is identical to /.test(line) ? 'identical' : / is a superset of /.test(line) ? 'superset' : / is incompatible with /.test(line) ? 'incompatible' : undefined;
  if (!verdict) return undefined;
  return { verdict, accepted: verdict !== 'incompatible', missingFeatures: [], forbiddenFeatures: [] };
}

export const VIRSH_FAILURE_KINDS = ['unreachable', 'no-domain', 'not-running', 'already-running', 'exists', 'no-job', 'cpu-incompatible', 'no-storage', 'other'] as const;
export type VirshFailureKind = (typeof VIRSH_FAILURE_KINDS)[number];

/** What went wrong in a failed virsh command, and libvirt's words for it. */
export interface VirshFailure {
  kind: VirshFailureKind;
  /** virsh's error lines joined: "Failed to destroy domain 'web1': Requested operation is not valid: domain is not running". */
  message: string;
}

const _FAILURES: [VirshFailureKind, RegExp][] = [
  ['unreachable', /failed to connect to the hypervisor/],
  ['no-domain', /failed to get domain|Domain not found/],
  ['not-running', /domain is not running/],
  ['already-running', /Domain is already active|domain is already running/],
  ['exists', /already exists with uuid|is already defined with uuid/],
  ['no-job', /no job is active on the domain/],
  ['cpu-incompatible', /the CPU is incompatible with host CPU/],
  ['no-storage', /Cannot access storage file/],
];

export function classifyVirshFailure(stderr: string): VirshFailure {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const errors = lines.filter((l) => l.startsWith('error: ')).map((l) => l.slice('error: '.length));
  const message = (errors.length ? errors : lines).join(': ');
  return { kind: _FAILURES.find(([, re]) => re.test(stderr))?.[0] ?? 'other', message };
}

function _keyValueLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

function _readJobValue(text: string, kind: _JobValue): number | undefined {
  if (kind === 'bytes') {
    const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)?(?:\/s)?$/.exec(text);
    const factor = _SIZE_UNITS[m?.[2] ?? 'B'];
    return m && factor !== undefined ? Math.round(Number(m[1]) * factor) : undefined;
  }
  // "1234 ms", "0 pages/s", "50 %", "3"
  const m = /^(\d+(?:\.\d+)?)(?:\s+\S+)?$/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function _featureList(reason: string, re: RegExp): string[] {
  const list = re.exec(reason)?.[1];
  return list ? list.split(',').map((f) => f.trim()) : [];
}

/** The `return` of a QMP reply as virsh prints it; its `error` as a FerryError. */
export function parseQmpReply(command: string, stdout: string): unknown {
  const reply = JSON.parse(stdout) as { return?: unknown; error?: { class?: string; desc?: string } };
  if (reply.error) {
    throw new FerryError('QMP_ERROR', `QEMU refused "${command}": ${reply.error.desc ?? reply.error.class ?? 'no reason given'}`, {
      hint: "see the domain's QEMU log (/var/log/libvirt/qemu/DOMAIN.log) on the source host",
      details: { class: reply.error.class },
    });
  }
  return reply.return;
}
