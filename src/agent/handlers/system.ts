/** Facts about the agent's host and running commands there. */
import * as fs from 'node:fs/promises';
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import * as os from 'node:os';
import { run } from '../../util/exec.js';
import { setHostName } from '../host-name.js';

export interface HostFacts {
  hostname: string;
  /** Stable identity of the machine (or lab host); two names for one host share it. */
  hostId: string;
  memAvailableBytes: number;
  memTotalBytes: number;
  cpus: number;
  kernel: string;
  agentVersion: string;
  /** The agent's process id on its host (in the host's own PID namespace). */
  agentPid: number;
}

export const AGENT_VERSION = '0.1.0';

async function hostId(): Promise<string> {
  for (const f of ['/var/lib/ferry/host-id', '/etc/machine-id']) {
    try {
      const id = (await fs.readFile(f, 'utf8')).trim();
      if (id) return id;
    } catch {
      // try the next source
    }
  }
  return os.hostname();
}

async function memInfo(): Promise<{ available: number; total: number }> {
  const text = await fs.readFile('/proc/meminfo', 'utf8');
  const field = (name: string): number => Number(/^(\S+):\s+(\d+)/m.exec(text.split('\n').find((l) => l.startsWith(name + ':')) ?? '')?.[2] ?? 0) * 1024;
  return { available: field('MemAvailable'), total: field('MemTotal') };
}

export const systemHandlers = {
  /** `as`: the name the controller knows this host by, which this agent's messages then use. */
  'system.facts': async (p?: { as?: string }): Promise<HostFacts> => {
    setHostName(p?.as);
    const mem = await memInfo();
    return {
      hostname: os.hostname(),
      hostId: await hostId(),
      memAvailableBytes: mem.available,
      memTotalBytes: mem.total,
      cpus: os.cpus().length,
      kernel: os.release(),
      agentVersion: AGENT_VERSION,
      agentPid: process.pid,
    };
  },

  /** A TCP port free on `address` right now, for QEMU's NBD and migration listeners. */
  'net.freePort': async (p: { address: string }): Promise<{ port: number }> => {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, p.address, resolve);
    });
    const port = (server.address() as { port: number }).port;
    await new Promise((r) => server.close(r));
    return { port };
  },

  /** The addresses `name` resolves to here, as this host's programs would reach it. */
  'net.resolve': async (p: { name: string }): Promise<{ addresses: string[] }> => {
    const found = await lookup(p.name, { all: true }).catch(() => []);
    return { addresses: found.map((a) => a.address) };
  },

  /** Runs a command on the host; never through a shell. */
  'system.run': async (p: { file: string; args: string[]; input?: string; timeoutMs?: number; allowFailure?: boolean }) => {
    const r = await run(p.file, p.args, { input: p.input, timeoutMs: p.timeoutMs, allowFailure: p.allowFailure ?? true });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs };
  },
};
