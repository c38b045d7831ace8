/** Getting an agent back after the old one (or the link to it) was lost. */
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import { AgentClient } from './agent-client.js';
import type { HostConfig } from './inventory.js';

/** An agent for `host`: `current` while it is connected, else a new one (five tries, a second apart). */
export async function liveAgent(host: HostConfig, current?: AgentClient): Promise<AgentClient> {
  if (current && !current.closed) return current;
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await AgentClient.connect(host);
    } catch (e) {
      lastError = e;
      await sleep(1000);
    }
  }
  throw lastError;
}

/**
 * Runs `use` with an agent for `host`: `current` while it is connected,
 * and once more with a new agent if it is found lost during the call (a
 * lost agent is often noticed only by the call that needs it). `use` must
 * bear being run twice. Returns the agent it last used, for the caller to
 * keep.
 */
export async function withLiveAgent(host: HostConfig, current: AgentClient, use: (agent: AgentClient) => Promise<void>): Promise<AgentClient> {
  const agent = await liveAgent(host, current);
  try {
    await use(agent);
    return agent;
  } catch (e) {
    if (!(e instanceof FerryError && e.code === 'AGENT_GONE')) throw e;
    const fresh = await liveAgent(host);
    await use(fresh);
    return fresh;
  }
}
