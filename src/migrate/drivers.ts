/**
 * Which driver moves a VM: the one whose hypervisor has it on the source.
 * A libvirt domain is moved through libvirt (its QEMU is libvirt's to
 * drive); a QEMU process started by hand, by the QEMU driver.
 */
import type { FoundVm, HypervisorDriver } from '../drivers/driver.js';
import { libvirtDriver } from '../drivers/libvirt/driver.js';
import { qemuDriver } from '../drivers/qemu/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError, messageOf } from '../util/errors.js';

// In this order when both have a VM of that name: a QEMU process started by hand is not libvirt's.
export const drivers: readonly HypervisorDriver[] = [qemuDriver, libvirtDriver];

export function driverNamed(name: string): HypervisorDriver {
  const driver = drivers.find((d) => d.name === name);
  if (!driver) throw new FerryError('USAGE', `Unknown driver "${name}"`, { hint: `use --driver ${drivers.map((d) => d.name).join(' or ')}` });
  return driver;
}

/** The driver named, or the first whose hypervisor has `vmName` on `source`; with the VM as it found it there. */
export async function driverFor(source: AgentClient, vmName: string, named?: string): Promise<{ driver: HypervisorDriver; found?: FoundVm }> {
  if (named) {
    const driver = driverNamed(named);
    return { driver, found: await driver.find(source, vmName) };
  }
  // Asked of every driver at once (each costs a round of calls on the source); the first that has it wins.
  const answers = await Promise.allSettled(drivers.map((d) => d.find(source, vmName)));
  const gone = answers.find((a) => a.status === 'rejected' && a.reason instanceof FerryError && a.reason.code === 'AGENT_GONE');
  if (gone) throw (gone as PromiseRejectedResult).reason;
  const first = answers.findIndex((a) => a.status === 'fulfilled' && a.value !== undefined);
  if (first >= 0) return { driver: drivers[first]!, found: (answers[first] as PromiseFulfilledResult<FoundVm>).value };
  // A hypervisor that could not be asked (libvirtd stopped) may be the one that has it: say so.
  const unasked = answers.flatMap((a, i) =>
    a.status === 'rejected' ? [`${drivers[i]!.name} could not be asked (${messageOf(a.reason)}${a.reason instanceof FerryError && a.reason.hint ? `; ${a.reason.hint}` : ''})`] : [],
  );
  const known = (await Promise.all(drivers.map((d) => d.listVms(source).catch(() => [])))).flat().map((v) => v.name);
  throw new FerryError('UNKNOWN_VM', `Unknown VM "${vmName}" on host "${source.host.name}"`, {
    hint: [known.length ? `VMs there: ${[...new Set(known)].join(', ')}` : `no libvirt domain or QEMU VM with a QMP monitor is there; see "ferry vm list ${source.host.name}"`, ...unasked].join('; '),
  });
}
