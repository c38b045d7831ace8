/**
 * The libvirt driver's host side, as one agent area: virsh against the
 * host's libvirtd, and the source side of a peer-to-peer migration. The
 * agent's entry point adds it; the declaration gives the controller the
 * methods' types.
 */
import type { Area } from '../../../agent/registry.js';
import type { libvirtHandlers } from './handlers.js';
import type { libvirtMigrationHandlers } from './migration-handlers.js';
import type { libvirtSecretHandlers } from './secrets.js';

export type LibvirtHostHandlers = typeof libvirtHandlers & typeof libvirtMigrationHandlers & typeof libvirtSecretHandlers;

declare module '../../../agent/registry.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AgentHandlers extends LibvirtHostHandlers {}
}

export const libvirtHostAreas: readonly Area[] = [
  {
    prefixes: ['libvirt.'],
    load: async () => {
      const [{ libvirtHandlers }, { libvirtMigrationHandlers }, { libvirtSecretHandlers }] = await Promise.all([import('./handlers.js'), import('./migration-handlers.js'), import('./secrets.js')]);
      return { ...libvirtHandlers, ...libvirtMigrationHandlers, ...libvirtSecretHandlers };
    },
  },
];
