/**
 * Starts a host's agent over its transport and returns the child process
 * whose stdio carries the agent protocol. ssh uses the system ssh binary, so
 * the user's ssh config, keys and agent apply.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
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
    ...host.sshOptions,
    host.ssh ?? host.name,
    '--',
    ...remote.map(shellQuote),
  ];
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
