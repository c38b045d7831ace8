/**
 * What a libvirt target must offer a domain before it is moved there, live
 * or offline: asked of its libvirtd at once (libvirt.admission), then judged.
 */
import { basename, dirname } from 'node:path';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import type { DiskPlan } from '../driver.js';
import { plainTcpHost } from './control-transport.js';
import { staysVolume, type DiskSecret, type DomainDescription } from './domain-xml.js';
import type { Admission, TargetPool } from './host/handlers.js';
import type { SecretEntry } from './virsh-output.js';

export interface AdmissionOptions {
  /** The description whose interfaces are judged (a live move's migratable XML names networks as the user wrote them). */
  networksOf?: DomainDescription;
  /**
   * The source host's <cpu> (libvirt.domain's `host`), for a running guest
   * whose CPU is the host's own (host-passthrough): it must find the same
   * features on the target. A guest that boots there anew takes the
   * target's.
   */
  sourceHostCpu?: string;
  /** How the source's libvirtd will reach the target's (a live move's libvirt URI): plain TCP has its authentication asked. */
  peerUri?: string;
}

/**
 * Asks the target about `domain`: a domain of its name there, libvirt's
 * verdict on its CPU (from `xml`, the domain's XML), and the networks its
 * interfaces use.
 */
export async function askAdmission(target: AgentClient, domain: DomainDescription, xml: string, options: AdmissionOptions = {}): Promise<Admission> {
  const networks = _attachments(options.networksOf ?? domain).length > 0;
  const tcpAuth = options.peerUri !== undefined && plainTcpHost(options.peerUri) !== undefined;
  const pools = [...new Set(domain.disks.flatMap((d) => (d.type === 'volume' && d.pool ? [d.pool] : [])))];
  const secrets = domain.disks.some((d) => d.secret);
  return target.call('libvirt.admission', {
    domain: domain.name,
    networks,
    ..._cpuToCompare(domain, xml, options.sourceHostCpu),
    ...(pools.length ? { pools } : {}),
    ...(tcpAuth ? { tcpAuth } : {}),
    ...(secrets ? { secrets } : {}),
  });
}

/** What libvirt.admission compares of the domain's CPU: nothing, the domain's own <cpu>, or its source host's. */
function _cpuToCompare(domain: DomainDescription, xml: string, sourceHostCpu: string | undefined): { xml?: string; virtType?: string; arch?: string } {
  if (!domain.cpu) return {};
  if (!_isHostCpu(domain.cpu.mode)) return { xml };
  // Under KVM the guest sees its host's CPU, so the target must offer the source host's. TCG's
  // "maximum" is QEMU's own, and a guest that boots anew (a cold move) takes the target's.
  if (domain.type !== 'kvm' || !sourceHostCpu) return {};
  return { xml: sourceHostCpu, virtType: domain.type, arch: domain.os.arch };
}

/**
 * Refuses a target that lacks what `domain` needs, as its admission (asked
 * with the same options) says; returns the secrets to carry there
 * (`copySecrets`).
 */
export function judgeAdmission(target: string, domain: DomainDescription, admission: Admission, options: AdmissionOptions & { copySecrets?: boolean } = {}): DiskSecret[] {
  checkNameFree(target, domain.name, admission.state);
  if (admission.cpu) checkCpu(target, domain, admission.cpu);
  checkNetworks(target, options.networksOf ?? domain, admission);
  return admission.secrets ? checkSecrets(target, domain, admission.secrets, options.copySecrets) : [];
}

/**
 * Every secret the domain's network disks log in with is defined on the
 * target: its QEMU could not open the disk otherwise. A secret's value is
 * carried only when the user asks (`copy`, --copy-secrets): the secrets to
 * carry are returned, each once; else the first missing one is refused,
 * with how to define it there.
 */
export function checkSecrets(target: string, domain: DomainDescription, defined: readonly SecretEntry[], copy = false): DiskSecret[] {
  const missing: DiskSecret[] = [];
  for (const disk of domain.disks) {
    const s = disk.secret;
    if (!s || missing.some((m) => _sameSecret(m, s))) continue;
    const found = s.uuid ? defined.some((d) => d.uuid === s.uuid!.toLowerCase()) : defined.some((d) => d.type === s.type && d.usage === s.usage);
    if (found) continue;
    if (copy) {
      missing.push(s);
      continue;
    }
    const which = s.uuid ? `secret ${s.uuid}` : `the ${[s.type, 'secret'].filter(Boolean).join(' ')} "${s.usage ?? ''}"`;
    const uuid = s.uuid ?? 'UUID';
    throw new FerryError('NOT_FOUND', `Disk ${disk.target} of domain "${domain.name}" logs in to its storage with ${which}, which is not defined on "${target}"`, {
      hint: `pass --copy-secrets to have ferry define it there, value included; or define it there as on the source${s.uuid ? '' : ' ("virsh secret-list" there gives its UUID)'}: "virsh secret-dumpxml ${uuid}" gives its XML for "virsh secret-define", then "virsh secret-set-value ${uuid}" sets its key`,
    });
  }
  return missing;
}

function _sameSecret(a: DiskSecret, b: DiskSecret): boolean {
  return a.uuid || b.uuid ? a.uuid?.toLowerCase() === b.uuid?.toLowerCase() : a.type === b.type && a.usage === b.usage;
}

/** No domain of that name there already (`state` null): ferry never replaces one. */
export function checkNameFree(target: string, name: string, state: string | null): void {
  if (state !== null) {
    throw new FerryError('TARGET_EXISTS', `A domain named "${name}" is already defined on "${target}"`, {
      hint: `undefine it there ("virsh undefine ${name}") or migrate to another host with --to`,
    });
  }
}

/** The target's hypervisor can give the domain its CPU (libvirt's own comparison). */
export function checkCpu(target: string, domain: DomainDescription, verdict: NonNullable<Admission['cpu']>): void {
  if (verdict.accepted) return;
  const lacks = verdict.missingFeatures.length ? `the target lacks ${verdict.missingFeatures.join(', ')}; ` : '';
  if (_isHostCpu(domain.cpu?.mode)) {
    throw new FerryError('INCOMPATIBLE_CPU', `Domain "${domain.name}" runs with its host's own CPU (${domain.cpu?.mode}), which "${target}" cannot give it: ${verdict.message ?? verdict.verdict}`, {
      hint: `${lacks}move it with --mode cold (it boots with the target's CPU), or give it a CPU model both hosts have (virsh edit, <cpu mode='custom'><model>...) at its next restart`,
    });
  }
  throw new FerryError('INCOMPATIBLE_CPU', `The CPU of domain "${domain.name}" (${domain.cpu?.model ?? domain.cpu?.mode}) is not available on "${target}": ${verdict.message ?? verdict.verdict}`, {
    hint: lacks
      ? `${lacks}give the domain a CPU model both hosts have (virsh edit, <cpu mode='custom'><model>...)`
      : /unknown cpu model/i.test(verdict.message ?? '')
        ? `libvirt on "${target}" does not know that model (an older libvirt): give the domain one both know ("virsh cpu-models x86_64" on each host lists them; virsh edit ${domain.name}), then retry`
        : 'give the domain a CPU model both hosts have (virsh edit), then retry',
  });
}

/** Every libvirt network and Linux bridge the domain's interfaces use exists on the target. */
export function checkNetworks(target: string, domain: DomainDescription, admission: Pick<Admission, 'networks' | 'bridges'>): void {
  for (const i of _attachments(domain)) {
    if (i.type === 'network' && !admission.networks?.some((n) => n.name === i.source && n.active)) {
      throw new FerryError('NO_NETWORK', `Domain "${domain.name}" uses libvirt network "${i.source}", which is not active on "${target}"`, {
        hint: `define and start it there ("virsh net-define", "virsh net-start ${i.source}") or change the domain's interface`,
      });
    }
    if (i.type === 'bridge' && !admission.bridges?.some((b) => b.name === i.source)) {
      throw new FerryError('NO_NETWORK', `Domain "${domain.name}" is attached to bridge "${i.source}", which does not exist on "${target}"`, {
        hint: `create the bridge there (e.g. "ip link add ${i.source} type bridge") or change the domain's interface`,
      });
    }
  }
}

/** CPU modes that give the guest whatever its host has, not a model of their own. */
function _isHostCpu(mode: string | undefined): boolean {
  return mode === 'host-passthrough' || mode === 'maximum';
}

/** The interfaces attached to a libvirt network or a Linux bridge by name. */
function _attachments(domain: DomainDescription): DomainDescription['interfaces'] {
  return domain.interfaces.filter((i) => (i.type === 'network' || i.type === 'bridge') && i.source);
}

/**
 * A volume disk that stays a volume (not moved elsewhere by --disk-map)
 * needs its pool on the target, active, keeping its volumes in the same
 * directory as on the source: the domain names the volume, libvirt finds it
 * through the pool, and ferry makes the image at the volume's path.
 */
export function checkPools(target: string, source: string, plans: readonly DiskPlan[], pools: readonly TargetPool[] = []): void {
  for (const plan of plans) {
    const volume = plan.disk.volume;
    if (!volume || !staysVolume(plan)) continue;
    const pool = pools.find((p) => p.name === volume.pool);
    const dir = dirname(plan.disk.path);
    const named = `disk ${plan.disk.device} is its volume "${volume.name}"`;
    const elsewhere = `or move the disk out of the pool with --disk-map ${plan.disk.path}=PATH (it then names the file)`;
    if (!pool?.defined) {
      throw new FerryError('NO_POOL', `Storage pool "${volume.pool}" is not defined on "${target}"; ${named}`, {
        hint: `define and start it there with its volumes in ${dir} (a directory pool: "virsh pool-define-as ${volume.pool} dir --target ${dir}", then "virsh pool-start ${volume.pool}"), ${elsewhere}`,
      });
    }
    if (!pool.active) {
      throw new FerryError('NO_POOL', `Storage pool "${volume.pool}" on "${target}" is not active; ${named}`, { hint: `start it there ("virsh pool-start ${volume.pool}"), ${elsewhere}` });
    }
    if (pool.path !== undefined && pool.path !== dir) {
      throw new FerryError('NO_POOL', `Storage pool "${volume.pool}" on "${target}" keeps its volumes in ${pool.path}, not in ${dir} as on "${source}"; ${named}`, {
        hint: `map the disk into it with --disk-map ${plan.disk.path}=${pool.path}/${basename(plan.disk.path)} (the disk then names the file), or give the pool the same directory on both hosts`,
      });
    }
  }
}
