/**
 * What a libvirt target must offer a domain before it is moved there, live
 * or offline: asked of its libvirtd at once (libvirt.admission), then judged.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import type { DomainDescription } from './domain-xml.js';
import type { Admission } from './host/handlers.js';

/**
 * Asks the target about `domain`: a domain of its name there, libvirt's
 * verdict on the CPU of `xml` (the domain's XML), and the networks the
 * interfaces of `networksOf` use.
 */
export async function askAdmission(target: AgentClient, domain: DomainDescription, xml: string, networksOf: DomainDescription = domain): Promise<Admission> {
  // host-passthrough asks for whatever the host has: there is nothing to compare.
  const compareCpu = !!domain.cpu && domain.cpu.mode !== 'host-passthrough';
  return target.call('libvirt.admission', { domain: domain.name, xml: compareCpu ? xml : undefined, networks: _attachments(networksOf).length > 0 });
}

/** Refuses a target that lacks what `domain` needs, as its admission says; `networksOf` is the description whose interfaces are judged. */
export function judgeAdmission(target: string, domain: DomainDescription, admission: Admission, networksOf: DomainDescription = domain): void {
  checkNameFree(target, domain.name, admission.state);
  if (admission.cpu) checkCpu(target, domain, admission.cpu);
  checkNetworks(target, networksOf, admission);
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
  throw new FerryError('INCOMPATIBLE_CPU', `The CPU of domain "${domain.name}" (${domain.cpu?.model ?? domain.cpu?.mode}) is not available on "${target}": ${verdict.message ?? verdict.verdict}`, {
    hint: verdict.missingFeatures.length
      ? `the target lacks ${verdict.missingFeatures.join(', ')}; give the domain a CPU model both hosts have (virsh edit, <cpu mode='custom'><model>...)`
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

/** The interfaces attached to a libvirt network or a Linux bridge by name. */
function _attachments(domain: DomainDescription): DomainDescription['interfaces'] {
  return domain.interfaces.filter((i) => (i.type === 'network' || i.type === 'bridge') && i.source);
}
