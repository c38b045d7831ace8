/**
 * Every method the agent answers. Each generic area keeps its handlers in
 * its own file under handlers/ and is listed here; a driver's host-side
 * areas live beside the driver and are added by the agent's entry point
 * (src/bin/agent.ts). Each area adds its type to AgentHandlers (the
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
import type { processHandlers } from './handlers/process.js';
import type { guestHandlers } from './handlers/guest.js';
import type { syncHandlers } from './handlers/sync.js';
import type { volumeHandlers } from './handlers/volumes.js';

type GenericHandlers = typeof fileHandlers & typeof systemHandlers & typeof processHandlers & typeof imageHandlers & typeof guestHandlers & typeof syncHandlers & typeof volumeHandlers;

/**
 * Every method an agent may answer. The generic areas are here; each
 * hypervisor driver (and the lab) adds its own host-side methods to this
 * interface from its own folder, by declaration merging, so that the agent
 * never imports a driver and the controller's client still knows every
 * method's types.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface AgentHandlers extends GenericHandlers {}

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

/** The generic areas, loaded when first called: each method's name starts with one of its area's prefixes. */
export const genericAreas: readonly Area[] = [
  { prefixes: ['sync.'], load: () => import('./handlers/sync.js').then((m) => m.syncHandlers) },
  { prefixes: ['file.'], load: () => import('./handlers/files.js').then((m) => m.fileHandlers) },
  { prefixes: ['process.'], load: () => import('./handlers/process.js').then((m) => m.processHandlers) },
  { prefixes: ['image.'], load: () => import('./handlers/images.js').then((m) => m.imageHandlers) },
  { prefixes: ['guest.'], load: () => import('./handlers/guest.js').then((m) => m.guestHandlers) },
  { prefixes: ['volume.'], load: () => import('./handlers/volumes.js').then((m) => m.volumeHandlers) },
];

/** The areas this agent answers: the generic ones, and those its entry point adds (drivers, the lab). */
export const areas: Area[] = [...genericAreas];

export function addAreas(more: readonly Area[]): void {
  areas.push(...more);
}

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
