/** Getting an agent back after the old one (or the link to it) was lost. */
import { sleep } from '../util/abort.js';
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
