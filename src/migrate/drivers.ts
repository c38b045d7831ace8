/**
 * Which driver moves a VM: the one whose hypervisor has it on the source.
 * A libvirt domain is moved through libvirt (its QEMU is libvirt's to
 * drive); a QEMU process started by hand, by the QEMU driver.
 */
import type { HypervisorDriver } from '../drivers/driver.js';
import { libvirtDriver } from '../drivers/libvirt/driver.js';
import { qemuDriver } from '../drivers/qemu/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';

// The QEMU driver first: its answer is a scan of /proc, libvirt's a round of virsh calls.
export const drivers: readonly HypervisorDriver[] = [qemuDriver, libvirtDriver];

export function driverNamed(name: string): HypervisorDriver {
  const driver = drivers.find((d) => d.name === name);
  if (!driver) throw new FerryError('USAGE', `Unknown driver "${name}"`, { hint: `use --driver ${drivers.map((d) => d.name).join(' or ')}` });
  return driver;
}

/** The driver named, or the first whose hypervisor has `vmName` on `source`; with the VM's state there. */
export async function driverFor(source: AgentClient, vmName: string, named?: string): Promise<{ driver: HypervisorDriver; state?: string }> {
  if (named) {
    const driver = driverNamed(named);
    return { driver, state: await driver.stateOf(source, vmName) };
  }
  for (const driver of drivers) {
    const state = await driver.stateOf(source, vmName);
    if (state !== undefined) return { driver, state };
  }
  const known = (await Promise.all(drivers.map((d) => d.listVms(source).catch(() => [])))).flat().map((v) => v.name);
  throw new FerryError('UNKNOWN_VM', `Unknown VM "${vmName}" on host "${source.host.name}"`, {
    hint: known.length ? `VMs there: ${[...new Set(known)].join(', ')}` : `no libvirt domain or QEMU VM with a QMP monitor is there; see "ferry vm list ${source.host.name}"`,
  });
}
