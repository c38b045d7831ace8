/** The hypervisor a guest is moving to, and what it looks like from inside. */
import { FerryError } from '../util/errors.js';
import type { TargetNaming } from './device-names.js';

export interface GuestTarget extends TargetNaming {
  name: string;
  /** Serial console device the target's consoles read. */
  console: string;
  /** Consoles that do not exist on the target. */
  foreignConsoles: RegExp;
  /** Drivers the guest needs to boot and reach the network. */
  bootDrivers: readonly ('virtio_pci' | 'virtio_blk')[];
  netDrivers: readonly 'virtio_net'[];
}

export const TARGETS: Record<string, GuestTarget> = {
  'kvm-virtio': {
    name: 'kvm-virtio',
    diskPrefix: 'vd',
    console: 'ttyS0',
    foreignConsoles: /^(hvc\d+|xvc\d+)/,
    bootDrivers: ['virtio_pci', 'virtio_blk'],
    netDrivers: ['virtio_net'],
  },
};

export function findTarget(name: string): GuestTarget {
  const t = TARGETS[name];
  if (!t) throw new FerryError('USAGE', `Unknown guest target "${name}"`, { hint: `use one of: ${Object.keys(TARGETS).join(', ')}` });
  return t;
}
