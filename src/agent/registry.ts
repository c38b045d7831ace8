/**
 * Every method the agent answers. Each area keeps its handlers in its own
 * file under handlers/ and adds them here: its type to AgentHandlers (the
 * controller's client derives its typed API from it) and its loader to
 * loadHandlers.
 *
 * The system handlers load with the agent, so that its first answer
 * (`system.facts`) comes as soon as node has started; the other areas, which
 * pull in the sync engine, QMP, QEMU and the guest code, load while the
 * controller reads that answer (see server.ts).
 */
import { systemHandlers } from './handlers/system.js';
import type { fileHandlers } from './handlers/files.js';
import type { imageHandlers } from './handlers/images.js';
import type { labHandlers } from './handlers/lab.js';
import type { leaseHandlers } from './handlers/leases.js';
import type { qemuHandlers } from './handlers/qemu.js';
import type { qmpHandlers } from './handlers/qmp.js';
import type { guestHandlers } from './handlers/guest.js';
import type { syncHandlers } from './handlers/sync.js';

export type AgentHandlers = typeof fileHandlers &
  typeof systemHandlers &
  typeof qemuHandlers &
  typeof qmpHandlers &
  typeof imageHandlers &
  typeof leaseHandlers &
  typeof labHandlers &
  typeof guestHandlers &
  typeof syncHandlers;
export type AgentMethod = keyof AgentHandlers;
export type AgentParams<M extends AgentMethod> = Parameters<AgentHandlers[M]>[0];
export type AgentResult<M extends AgentMethod> = Awaited<ReturnType<AgentHandlers[M]>>;

/** The handlers loaded with the agent. */
export const startHandlers = systemHandlers;

let all: Promise<AgentHandlers> | undefined;

/** Every handler, loading the areas on the first call. */
export function loadHandlers(): Promise<AgentHandlers> {
  all ??= Promise.all([
    import('./handlers/files.js').then((m) => m.fileHandlers),
    import('./handlers/qemu.js').then((m) => m.qemuHandlers),
    import('./handlers/qmp.js').then((m) => m.qmpHandlers),
    import('./handlers/images.js').then((m) => m.imageHandlers),
    import('./handlers/leases.js').then((m) => m.leaseHandlers),
    import('./handlers/lab.js').then((m) => m.labHandlers),
    import('./handlers/guest.js').then((m) => m.guestHandlers),
    import('./handlers/sync.js').then((m) => m.syncHandlers),
  ]).then((areas) => Object.assign({}, startHandlers, ...areas) as AgentHandlers);
  return all;
}
