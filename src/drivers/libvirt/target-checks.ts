/** What a libvirt target must offer a domain before it is moved there, live or offline. */
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import type { DomainDescription } from './domain-xml.js';

/** No domain of that name there already: ferry never replaces one. */
export async function checkNameFree(target: AgentClient, name: string): Promise<void> {
  if (await target.call('libvirt.state', { domain: name })) {
    throw new FerryError('TARGET_EXISTS', `A domain named "${name}" is already defined on "${target.host.name}"`, {
      hint: `undefine it there ("virsh undefine ${name}") or migrate to another host with --to`,
    });
  }
}

/** The target's hypervisor can give the domain its CPU (libvirt's own comparison). */
export async function checkCpu(target: AgentClient, domain: DomainDescription, domainXml: string): Promise<void> {
  // host-passthrough asks for whatever the host has: there is nothing to compare.
  if (!domain.cpu || domain.cpu.mode === 'host-passthrough') return;
  const verdict = await target.call('libvirt.cpuCompare', { xml: domainXml });
  if (!verdict.accepted) {
    throw new FerryError(
      'INCOMPATIBLE_CPU',
      `The CPU of domain "${domain.name}" (${domain.cpu.model ?? domain.cpu.mode}) is not available on "${target.host.name}": ${verdict.message ?? verdict.verdict}`,
      {
        hint: verdict.missingFeatures.length
          ? `the target lacks ${verdict.missingFeatures.join(', ')}; give the domain a CPU model both hosts have (virsh edit, <cpu mode='custom'><model>...)`
          : /unknown cpu model/i.test(verdict.message ?? '')
            ? `libvirt on "${target.host.name}" does not know that model (an older libvirt): give the domain one both know ("virsh cpu-models x86_64" on each host lists them; virsh edit ${domain.name}), then retry`
            : 'give the domain a CPU model both hosts have (virsh edit), then retry',
      },
    );
  }
}

/** Every libvirt network and Linux bridge the domain's interfaces use exists on the target. */
export async function checkNetworks(target: AgentClient, domain: DomainDescription): Promise<void> {
  const wanted = domain.interfaces.filter((i) => (i.type === 'network' || i.type === 'bridge') && i.source);
  if (!wanted.length) return;
  const [networks, bridges] = await Promise.all([target.call('libvirt.networks', {}), target.call('libvirt.bridges', undefined)]);
  for (const i of wanted) {
    if (i.type === 'network' && !networks.some((n) => n.name === i.source && n.active)) {
      throw new FerryError('NO_NETWORK', `Domain "${domain.name}" uses libvirt network "${i.source}", which is not active on "${target.host.name}"`, {
        hint: `define and start it there ("virsh net-define", "virsh net-start ${i.source}") or change the domain's interface`,
      });
    }
    if (i.type === 'bridge' && !bridges.some((b) => b.name === i.source)) {
      throw new FerryError('NO_NETWORK', `Domain "${domain.name}" is attached to bridge "${i.source}", which does not exist on "${target.host.name}"`, {
        hint: `create the bridge there (e.g. "ip link add ${i.source} type bridge") or change the domain's interface`,
      });
    }
  }
}
