/** What every command shares: the inventory, agent connections, error output. */
import type { Command } from 'commander';
import { AgentClient } from '../hosts/agent-client.js';
import { findHost, loadInventory, type Inventory } from '../hosts/inventory.js';
import { asFerryError, formatError } from '../util/errors.js';

export function inventoryFor(cmd: Command): Inventory {
  const root = cmd.optsWithGlobals() as { hosts?: string };
  return loadInventory(root.hosts);
}

export async function connectHost(cmd: Command, name: string): Promise<AgentClient> {
  return AgentClient.connect(findHost(inventoryFor(cmd), name));
}

/**
 * Wraps a command's action: errors become one clear message (or a JSON
 * object with --json) and exit code 1; usage errors exit 2.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const err = asFerryError(e);
      const cmd = args[args.length - 1] as Command;
      const json = (cmd?.optsWithGlobals?.() as { json?: boolean } | undefined)?.json;
      if (json) process.stdout.write(JSON.stringify({ status: 'error', error: { code: err.code, message: err.message, hint: err.hint } }, null, 2) + '\n');
      else process.stderr.write(`ferry: ${formatError(err)}\n`);
      process.exitCode = err.code === 'USAGE' ? 2 : 1;
    }
  };
}

/** Commander's parser of a repeatable option: each use adds its value. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
