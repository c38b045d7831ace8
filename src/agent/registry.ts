/**
 * Every method the agent answers. Each area keeps its handlers in its own
 * file under handlers/ and adds them here: its type to AgentHandlers (the
 * controller's client derives its typed API from it) and its loader, with
 * its methods' name prefix, to `areas`.
 *
 * The system handlers load with the agent, so that its first answer
 * (`system.facts`) comes as soon as node has started; each other area, which
 * pulls in the sync engine, QMP, QEMU or the guest code, loads when first
 * called (or ahead, see server.ts).
 */
import { systemHandlers } from './handlers/system.js';
import type { fileHandlers } from './handlers/files.js';
import type { imageHandlers } from './handlers/images.js';
import type { labHandlers } from './handlers/lab.js';
import type { qemuHandlers } from './handlers/qemu.js';
import type { qmpHandlers } from './handlers/qmp.js';
import type { guestHandlers } from './handlers/guest.js';
import type { syncHandlers } from './handlers/sync.js';
import type { migrationHandlers } from '../drivers/qemu/host/handlers.js';

export type AgentHandlers = typeof fileHandlers &
  typeof systemHandlers &
  typeof qemuHandlers &
  typeof qmpHandlers &
  typeof imageHandlers &
  typeof labHandlers &
  typeof guestHandlers &
  typeof syncHandlers &
  typeof migrationHandlers;
export type AgentMethod = keyof AgentHandlers;
export type AgentParams<M extends AgentMethod> = Parameters<AgentHandlers[M]>[0];
export type AgentResult<M extends AgentMethod> = Awaited<ReturnType<AgentHandlers[M]>>;

/** The handlers loaded with the agent. */
export const startHandlers = systemHandlers;

export interface Area {
  /** Method name prefixes: a hint to load just this area for such a method (else every area loads). */
  prefixes: string[];
  load(): Promise<Record<string, unknown>>;
}

/** The other areas, loaded when first called: each method's name starts with one of its area's prefixes. */
export const areas: Area[] = [
  { prefixes: ['sync.'], load: () => import('./handlers/sync.js').then((m) => m.syncHandlers) },
  { prefixes: ['file.'], load: () => import('./handlers/files.js').then((m) => m.fileHandlers) },
  { prefixes: ['qmp.'], load: () => import('./handlers/qmp.js').then((m) => m.qmpHandlers) },
  { prefixes: ['qemu.', 'process.'], load: () => import('./handlers/qemu.js').then((m) => m.qemuHandlers) },
  { prefixes: ['image.'], load: () => import('./handlers/images.js').then((m) => m.imageHandlers) },
  { prefixes: ['lab.'], load: () => import('./handlers/lab.js').then((m) => m.labHandlers) },
  { prefixes: ['guest.'], load: () => import('./handlers/guest.js').then((m) => m.guestHandlers) },
  { prefixes: ['migration.'], load: () => import('../drivers/qemu/host/handlers.js').then((m) => m.migrationHandlers) },
];

const loading = new Map<Area, Promise<Record<string, unknown>>>();

function loadArea(area: Area): Promise<Record<string, unknown>> {
  let handlers = loading.get(area);
  if (!handlers) loading.set(area, (handlers = area.load()));
  return handlers;
}

/**
 * The handler for a method outside startHandlers, or undefined if there is
 * none: its area loads first, the others only if its name does not tell it.
 */
export async function findHandler(method: string): Promise<unknown> {
  const hinted = areas.find((a) => a.prefixes.some((prefix) => method.startsWith(prefix)));
  if (hinted) {
    const handlers = await loadArea(hinted);
    if (Object.hasOwn(handlers, method)) return handlers[method];
  }
  const all = await Promise.all(areas.map(loadArea));
  return all.find((handlers) => Object.hasOwn(handlers, method))?.[method];
}
