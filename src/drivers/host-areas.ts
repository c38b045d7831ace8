/** Every driver's host-side areas, for the agent's entry point. */
import type { Area } from '../agent/registry.js';
import { libvirtHostAreas } from './libvirt/host/areas.js';
import { qemuHostAreas } from './qemu/host/areas.js';

export const driverHostAreas: readonly Area[] = [...qemuHostAreas, ...libvirtHostAreas];
