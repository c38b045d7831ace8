/**
 * The QEMU driver's host side, as agent areas: its processes, its monitors
 * (QMP) and the two sides of a live migration. The agent's entry point adds
 * them; the declaration below gives the controller their types.
 */
import type { Area } from '../../../agent/registry.js';
import type { migrationHandlers } from './migration-handlers.js';
import type { qemuHandlers } from './qemu-handlers.js';
import type { qmpHandlers } from './qmp-handlers.js';

export type QemuHostHandlers = typeof qemuHandlers & typeof qmpHandlers & typeof migrationHandlers;

declare module '../../../agent/registry.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AgentHandlers extends QemuHostHandlers {}
}

export const qemuHostAreas: readonly Area[] = [
  { prefixes: ['qmp.'], load: () => import('./qmp-handlers.js').then((m) => m.qmpHandlers) },
  { prefixes: ['qemu.'], load: () => import('./qemu-handlers.js').then((m) => m.qemuHandlers) },
  { prefixes: ['migration.'], load: () => import('./migration-handlers.js').then((m) => m.migrationHandlers) },
];
