/**
 * `ferry migrate VM --from A --to B` needs the agents of A and B before
 * anything else, and starting one (ssh, node, the agent's modules) takes as
 * long as loading the command's own modules: both happen at once. The
 * command then takes the running agents (AgentClient.connect); anything
 * wrong here (no inventory, an unknown host) is left for it to report.
 */
import { AgentClient } from '../hosts/agent-client.js';
import { loadInventory } from '../hosts/inventory.js';

/** The value of `--name V` or `--name=V` among `args`. */
export function optionValue(args: readonly string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') return undefined;
    if (args[i] === name) return args[i + 1];
    if (args[i]!.startsWith(`${name}=`)) return args[i]!.slice(name.length + 1);
  }
  return undefined;
}

export function startMigrationAgents(argv: readonly string[]): void {
  const args = argv.slice(2);
  const from = optionValue(args, '--from');
  const to = optionValue(args, '--to');
  if (!from || !to || from === to) return;
  try {
    const inventory = loadInventory(optionValue(args, '--hosts'));
    for (const name of [from, to]) {
      const host = inventory.hosts.get(name);
      if (host) AgentClient.startEarly(host);
    }
  } catch {
    // the command reports a bad inventory itself
  }
}

/** Closes the agents started here that the command did not take (it failed before it connected). */
export function closeUnusedAgents(): void {
  AgentClient.closeUnused();
}
