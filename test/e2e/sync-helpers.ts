/** Shared set-up for the sync end-to-end tests: two loopback hosts, images, the CLI. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { CLI as main } from './cli.js';

export const MiB = 1 << 20;

export interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  cleanup(): Promise<void>;
}

/**
 * A temp dir with an inventory of two local hosts on 127.0.0.12 and
 * 127.0.0.13: not the lab's addresses, since these tests run beside the lab's,
 * whose fault tests cut every connection to lab-b.
 */
export async function makeLab(name: string): Promise<Lab> {
  const dir = `/var/tmp/ferry-${name}-${process.pid}`;
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(`${dir}/state`, { recursive: true });
  await fs.writeFile(`${dir}/hosts.yaml`, 'hosts:\n  ha: { transport: local, address: 127.0.0.12 }\n  hb: { transport: local, address: 127.0.0.13 }\n');
  const env = { ...process.env, FERRY_HOSTS: `${dir}/hosts.yaml`, FERRY_SYNC_STATE_DIR: `${dir}/state`, FERRY_LAB_DIR: `${dir}/no-lab` };
  return { dir, env, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export interface FerryRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The --json result, when stdout held one. */
  json: Record<string, unknown> & { status?: string; code?: string };
}

export interface FerryProcess {
  child: ChildProcess;
  done: Promise<FerryRun>;
  /** Resolves once the progress lines report at least this many blocks confirmed by the destination. */
  confirmed(blocks: number): Promise<void>;
}

export function startFerry(args: string[], env: NodeJS.ProcessEnv): FerryProcess {
  const child = spawn(process.execPath, [main, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const confirmed = (blocks: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const counts = [...stderr.matchAll(/(\d+) blocks confirmed/g)].map((m) => Number(m[1]));
        if (counts.some((c) => c >= blocks)) resolve();
        else if (child.exitCode !== null) reject(new Error(`ferry ended before ${blocks} blocks were confirmed: ${stderr}`));
        else setTimeout(check, 100);
      };
      check();
    });
  const done = new Promise<FerryRun>((resolve) =>
    child.on('close', (code) => {
      let json = {};
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        // not a --json run
      }
      resolve({ code, stdout, stderr, json });
    }),
  );
  return { child, done, confirmed };
}

export function ferry(args: string[], env: NodeJS.ProcessEnv): Promise<FerryRun> {
  return startFerry(args, env).done;
}

/**
 * A sparse raw image of `sizeMiB` with random data in the given MiB-aligned
 * extents ([offsetMiB, lengthMiB]); the rest are holes.
 */
export async function makeImage(path: string, sizeMiB: number, extents: Array<[number, number]>, compressible = false): Promise<void> {
  const fh = await fs.open(path, 'w');
  try {
    await fh.truncate(sizeMiB * MiB);
    for (const [off, len] of extents) {
      for (let i = 0; i < len; i++) await fh.write(block(compressible), 0, MiB, (off + i) * MiB);
    }
  } finally {
    await fh.close();
  }
}

export function block(compressible = false): Buffer {
  const b = Buffer.alloc(MiB);
  if (compressible) {
    const line = Buffer.from(`ferry block ${Math.random()} `.repeat(8));
    for (let o = 0; o < MiB; o += line.length) line.copy(b, o);
  } else randomFillSync(b);
  return b;
}

/** Writes whole 1 MiB blocks (random data, or zeros) at the given MiB indexes. */
export async function overwriteBlocks(path: string, indexes: number[], zeros = false): Promise<void> {
  const fh = await fs.open(path, 'r+');
  try {
    for (const i of indexes) await fh.write(zeros ? Buffer.alloc(MiB) : block(), 0, MiB, i * MiB);
  } finally {
    await fh.close();
  }
}

/** Runs a command; resolves with its exit code and output. */
export function sh(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

/** Byte-for-byte equality, checked by cmp (raw) or qemu-img compare (any formats). */
export async function sameContent(a: string, b: string): Promise<boolean> {
  const r = a.endsWith('.qcow2') || b.endsWith('.qcow2') ? await sh('qemu-img', ['compare', '-U', a, b]) : await sh('cmp', [a, b]);
  return r.code === 0;
}

/** Agent processes of a ferry CLI run that hold `path` open. */
export async function agentHolding(cliPid: number, path: string): Promise<number | undefined> {
  const real = await fs.realpath(path).catch(() => path);
  const kids = (await sh('pgrep', ['-P', String(cliPid)])).out.split('\n').filter(Boolean).map(Number);
  for (const pid of kids) {
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) if ((await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === real) return pid;
  }
  return undefined;
}
