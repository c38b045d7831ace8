/**
 * The host inventory: which hosts ferry knows, how to reach each one's agent
 * and which address its migration listeners bind to. YAML, from --hosts FILE,
 * $FERRY_HOSTS, ~/.config/ferry/hosts.yaml or /etc/ferry/hosts.yaml (the
 * first that exists), plus the lab's hosts while a lab is up.
 *
 *   hosts:
 *     kvm1:
 *       transport: ssh            # or local
 *       ssh: root@kvm1.example    # ssh destination; default: the host's name
 *       ssh_options: [-p, "22"]   # extra ssh arguments
 *       ssh_multiplex: false      # one ssh connection per agent (default: shared)
 *       address: 10.0.0.1         # where NBD and RAM migration listen
 *       agent: [ferry, agent]     # how to start the agent there
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { FerryError, messageOf } from '../util/errors.js';
import { text } from '../util/text.js';

export interface HostConfig {
  name: string;
  transport: 'local' | 'ssh';
  /** ssh destination, user@host; ssh transport only. */
  ssh?: string;
  sshOptions: string[];
  /** false: a new ssh connection for every agent instead of one shared per host. */
  sshMultiplex?: boolean;
  /** Address the host's migration listeners (NBD, RAM, sync) bind to. */
  address: string;
  /** Command that starts the agent on the host. */
  agent?: string[];
  /** Local transport only: a prefix to run the agent under (the lab uses nsenter). */
  wrap?: string[];
  /**
   * How another host's libvirtd reaches this host's libvirtd for a
   * peer-to-peer migration; default qemu+ssh://SSH/system (ssh hosts) or
   * qemu:///system (local). The lab uses qemu+tcp on loopback.
   */
  libvirtUri?: string;
}

export interface Inventory {
  hosts: Map<string, HostConfig>;
  /** Files the inventory was read from, for error messages. */
  sources: string[];
}

export function labDir(): string {
  return process.env.FERRY_LAB_DIR ?? '/var/lib/ferry-lab';
}

export function defaultInventoryPath(): string | undefined {
  if (process.env.FERRY_HOSTS) return process.env.FERRY_HOSTS;
  const candidates = [join(homedir(), '.config/ferry/hosts.yaml'), '/etc/ferry/hosts.yaml'];
  return candidates.find((p) => existsSync(p));
}

export function loadInventory(file?: string): Inventory {
  const inv: Inventory = { hosts: new Map(), sources: [] };
  const labFile = join(labDir(), 'hosts.yaml');
  if (existsSync(labFile)) mergeFile(inv, labFile);
  const path = file ?? defaultInventoryPath();
  if (path) {
    if (!existsSync(path)) {
      throw new FerryError('NOT_FOUND', `Cannot read host inventory "${path}": file not found`, {
        hint: 'create it (see README, "Hosts") or pass --hosts FILE',
      });
    }
    mergeFile(inv, path);
  }
  return inv;
}

function mergeFile(inv: Inventory, path: string): void {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new FerryError('USAGE', `Cannot parse host inventory "${path}": ${messageOf(e)}`, { hint: 'fix the YAML syntax' });
  }
  for (const host of parseInventory(doc, path)) inv.hosts.set(host.name, host);
  inv.sources.push(path);
}

/** Validates an inventory document; exported for tests. */
export function parseInventory(doc: unknown, source = 'inventory'): HostConfig[] {
  const hosts = (doc as { hosts?: unknown } | null)?.hosts;
  if (hosts === undefined || hosts === null) return [];
  if (typeof hosts !== 'object' || Array.isArray(hosts)) {
    throw new FerryError('USAGE', `Invalid host inventory "${source}": "hosts" must be a mapping of host names`, {
      hint: 'write hosts: { NAME: { transport: ssh, address: ADDR } }',
    });
  }
  return Object.entries(hosts as Record<string, Record<string, unknown>>).map(([name, h]) => {
    const bad = (what: string): never => {
      throw new FerryError('USAGE', `Invalid host "${name}" in "${source}": ${what}`, { hint: 'see README, "Hosts"' });
    };
    h = h ?? {};
    const transport = (h.transport ?? 'ssh') as string;
    if (transport !== 'local' && transport !== 'ssh') bad(`transport must be "local" or "ssh", not "${transport}"`);
    const list = (v: unknown, field: string): string[] | undefined => {
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' && typeof x !== 'number')) bad(`${field} must be a list of strings`);
      return (v as unknown[]).map(String);
    };
    if (h.ssh_multiplex !== undefined && typeof h.ssh_multiplex !== 'boolean') bad('ssh_multiplex must be true or false');
    const address = h.address === undefined ? (transport === 'local' ? '127.0.0.1' : name) : text(h.address);
    return {
      name,
      transport: transport as 'local' | 'ssh',
      ssh: transport === 'ssh' ? text(h.ssh ?? name) : undefined,
      sshOptions: list(h.ssh_options, 'ssh_options') ?? [],
      sshMultiplex: h.ssh_multiplex as boolean | undefined,
      address,
      agent: list(h.agent, 'agent'),
      wrap: list(h.wrap, 'wrap'),
      libvirtUri: h.libvirt_uri === undefined ? undefined : text(h.libvirt_uri),
    };
  });
}

export function findHost(inv: Inventory, name: string): HostConfig {
  const host = inv.hosts.get(name);
  if (!host) {
    const known = [...inv.hosts.keys()];
    throw new FerryError('UNKNOWN_HOST', `Unknown host "${name}"`, {
      hint: known.length
        ? `known hosts: ${known.join(', ')}; add it to the inventory (${inv.sources.filter((s) => !s.startsWith(labDir())).join(', ') || '~/.config/ferry/hosts.yaml, or pass --hosts FILE'})`
        : 'no hosts are defined: write ~/.config/ferry/hosts.yaml, pass --hosts FILE, or run "ferry lab up"',
    });
  }
  return host;
}
