/**
 * How this agent's messages name the host it runs on: by the name the
 * controller knows it by (the inventory's, given with the first call), so
 * that an error reads "on host "kvm2"" as the user typed it, else by the
 * machine's hostname.
 */
import { hostname } from 'node:os';

let known: string | undefined;

/** Set once by system.facts, from the controller. */
export function setHostName(name: string | undefined): void {
  if (name) known = name;
}

/** "host "kvm2"" when the controller gave a name, the hostname otherwise. */
export function thisHost(): string {
  return known ? `host "${known}"` : hostname();
}
