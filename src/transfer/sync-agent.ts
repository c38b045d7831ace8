/**
 * What the sync controller needs of a host's agent: its identity, its
 * listener address, the `sync.*` calls and their progress notifications.
 * An AgentClient is one; unit tests pass a fake.
 */
import type { AgentMethod, AgentParams, AgentResult } from '../agent/registry.js';
import type { SyncProgress } from '../sync/sync-progress.js';

/** The agent methods a sync uses. */
export type SyncMethod = Extract<AgentMethod, `sync.${string}`>;

export type NotificationListener = (method: string, params: unknown) => void;

export interface SyncAgent {
  /** Where the host's listeners bind (the source listens there for the destination). */
  readonly host: { readonly address: string };
  /** The host's identity, once `ready` has settled. */
  readonly facts: { readonly hostId: string };
  /** Settles with the agent's first answer. */
  readonly ready: Promise<void>;
  call<M extends SyncMethod>(method: M, params: AgentParams<M>): Promise<AgentResult<M>>;
  on(event: 'notification', listener: NotificationListener): unknown;
  off(event: 'notification', listener: NotificationListener): unknown;
}

/** Whether a notification's parameters are a sender's progress report. */
export function isSyncProgress(params: unknown): params is SyncProgress {
  return typeof params === 'object' && params !== null && 'phase' in params && 'bytesCompared' in params;
}
