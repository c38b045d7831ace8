/**
 * The lab's host side: the record checker, which must run where the test
 * guest's disks are. An agent adds it only on a lab host (LAB_HOST_MARKER).
 */
import type { Area } from '../agent/registry.js';
import type { labHandlers } from './host-handlers.js';

/** Written by `ferry lab up` into each lab host's private /var/lib/ferry. */
export const LAB_HOST_MARKER = '/var/lib/ferry/lab-host';

type LabHostHandlers = typeof labHandlers;

declare module '../agent/registry.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface AgentHandlers extends LabHostHandlers {}
}

export const labHostAreas: readonly Area[] = [{ prefixes: ['lab.'], load: () => import('./host-handlers.js').then((m) => m.labHandlers) }];
