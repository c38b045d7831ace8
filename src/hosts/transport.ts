/**
 * Starts a host's agent over its transport and returns the child process
 * whose stdio carries the agent protocol. ssh uses the system ssh binary, so
 * the user's ssh config, keys and agent apply.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { agentEntryUrl } from './agent-entry.js';
import type { HostConfig } from './inventory.js';

/** How this very installation starts its agent: node + the agent's lean entry point. */
export function localAgentCommand(): string[] {
  return [process.execPath, fileURLToPath(agentEntryUrl)];
}

export function agentArgv(host: HostConfig): string[] {
  if (host.transport === 'local') {
    return [...(host.wrap ?? []), ...(host.agent ?? localAgentCommand())];
  }
  const remote = host.agent ?? ['ferry', 'agent'];
  return [
    'ssh',
    '-T',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=10',
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=3',
    ...multiplexOptions(host),
    ...host.sshOptions,
    host.ssh ?? host.name,
    '--',
    ...remote.map(shellQuote),
  ];
}

/**
 * One ssh connection per host, shared by the agents ferry starts there and
 * kept a minute after the last (ssh's ControlMaster, as Ansible does): a
 * migration starts two to four agents, and each new connection costs a key
 * exchange and a login. A session still ends alone: when ferry dies, the
 * master closes its channel and the agent reads the end of its input.
 * `ssh_multiplex: false` in the inventory, or the user's own Control*
 * options, leave ssh as configured.
 */
function multiplexOptions(host: HostConfig): string[] {
  if (host.sshMultiplex === false || host.sshOptions.some((o) => /^-?o?\s*Control/i.test(o) || /^-S/.test(o))) return [];
  return ['-o', 'ControlMaster=auto', '-o', `ControlPath=${controlDir()}/%C`, '-o', 'ControlPersist=60'];
}

/** The sockets' directory, private to this user; short, as a socket's path must be. */
function controlDir(): string {
  const dir = process.env.FERRY_SSH_CONTROL_DIR ?? join(process.env.XDG_RUNTIME_DIR ?? tmpdir(), `ferry-ssh-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export type AgentProcess = ChildProcessByStdio<Writable, Readable, Readable>;

export function spawnAgent(host: HostConfig): AgentProcess {
  const [file, ...args] = agentArgv(host);
  // An agent makes no TLS connections, and node reads and parses every
  // certificate NODE_EXTRA_CA_CERTS names before running anything, which
  // would delay every agent's start.
  const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
  // Its own process group: a Ctrl-C at the terminal reaches ferry alone, which
  // still needs its agents (and the ssh links to them) to roll back.
  return spawn(file!, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
}

/** ssh joins its remote arguments into one shell command line. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
