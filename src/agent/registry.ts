/**
 * Every method the agent answers. Each area keeps its handlers in its own
 * file under handlers/ and adds them here; the controller's client derives
 * its typed API from this object's type.
 */
import { fileHandlers } from './handlers/files.js';
import { imageHandlers } from './handlers/images.js';
import { labHandlers } from './handlers/lab.js';
import { leaseHandlers } from './handlers/leases.js';
import { qemuHandlers } from './handlers/qemu.js';
import { qmpHandlers } from './handlers/qmp.js';
import { systemHandlers } from './handlers/system.js';
import { guestHandlers } from './handlers/guest.js';
import { syncHandlers } from './handlers/sync.js';

export const handlers = {
  ...fileHandlers,
  ...systemHandlers,
  ...qemuHandlers,
  ...qmpHandlers,
  ...imageHandlers,
  ...leaseHandlers,
  ...labHandlers,
  ...guestHandlers,
  ...syncHandlers,
};

export type AgentHandlers = typeof handlers;
export type AgentMethod = keyof AgentHandlers;
export type AgentParams<M extends AgentMethod> = Parameters<AgentHandlers[M]>[0];
export type AgentResult<M extends AgentMethod> = Awaited<ReturnType<AgentHandlers[M]>>;
