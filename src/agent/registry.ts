/**
 * Every method the agent answers. Each area keeps its handlers in its own
 * file under handlers/ and adds them here; the controller's client derives
 * its typed API from this object's type.
 */
import { fileHandlers } from './handlers/files.js';
import { systemHandlers } from './handlers/system.js';
import { guestHandlers } from './handlers/guest.js';

export const handlers = {
  ...fileHandlers,
  ...systemHandlers,
  ...guestHandlers,
};

export type AgentHandlers = typeof handlers;
export type AgentMethod = keyof AgentHandlers;
export type AgentParams<M extends AgentMethod> = Parameters<AgentHandlers[M]>[0];
export type AgentResult<M extends AgentMethod> = Awaited<ReturnType<AgentHandlers[M]>>;
