/**
 * Benchmark of `ferry sync` against the usual tools, measured side by side in
 * one run on a 4 GiB raw image with realistic content (random data,
 * compressible text, written zeros and holes), between two agents on
 * loopback. Prints one JSON object:
 *
 *  (a) full copy to an empty destination vs `qemu-img convert` and
 *      `cp --sparse=always` (ratio = faster tool's seconds / ferry's; goal >= 0.8);
 *  (b) re-sync after 1% of the 1 MiB blocks changed vs
 *      `rsync --inplace --no-whole-file` (speed-up; goal >= 5);
 *  (c) bytes ferry sent in (b) / bytes changed (goal <= 1.1).
 *
 * ferry always fsyncs its destination (its resume checkpoint depends on
 * it) and by default reads it back to verify; the tools do neither. So (a)
 * is reported twice: against the tools as they run, and against the tools
 * followed by an fsync of their output (`sync FILE`), the like-for-like
 * figure for durable copies.
 */
import { spawn } from 'node:child_process';
import { randomFillSync, randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;
const SIZE = 4096 * MiB;
const main = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const dir = `/var/tmp/ferry-bench-sync-${process.pid}`;

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ seconds: number; stdout: string; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.trim()}`));
      else resolve({ seconds, stdout, stderr });
    });
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

/** Random data, text-like compressible data, written zeros, and holes. */
async function makeImage(path: string): Promise<Record<string, number>> {
  const fh = await fs.open(path, 'w');
  const layout = { random: 0, text: 0, zeros: 0 };
  try {
    await fh.truncate(SIZE);
    const buf = Buffer.alloc(MiB);
    const text = Buffer.from(
      Array.from({ length: 4000 }, (_, i) => `/usr/lib/x86_64-linux-gnu/lib${i % 97}.so.${i % 7} ferry block ${i * 7919}\n`).join(''),
    );
    for (let b = 0; b < SIZE / MiB; b++) {
      const region = Math.floor(b / 64) % 8; // 64 MiB stripes
      if (region <= 2) {
        randomFillSync(buf);
        layout.random++;
      } else if (region === 3) {
        for (let o = 0; o < MiB; o += text.length) text.copy(buf, o, 0, Math.min(text.length, MiB - o));
        buf.writeUInt32LE(b, 0);
        layout.text++;
      } else if (region === 4) {
        buf.fill(0);
        layout.zeros++;
      } else continue; // regions 5-7: holes
      await fh.write(buf, 0, MiB, b * MiB);
    }
  } finally {
    await fh.close();
  }
  return { random_mib: layout.random, text_mib: layout.text, written_zero_mib: layout.zeros, hole_mib: SIZE / MiB - layout.random - layout.text - layout.zeros };
}

async function ferrySync(env: NodeJS.ProcessEnv, args: string[]): Promise<{ seconds: number; result: Record<string, number | string | boolean> }> {
  const r = await run(process.execPath, [main, 'sync', '--json', ...args], env);
  return { seconds: r.seconds, result: JSON.parse(r.stdout.trim().split('\n').pop()!) };
}

async function best<T extends { seconds: number }>(n: number, fn: () => Promise<T>, between?: () => Promise<void>): Promise<T> {
  let top: T | undefined;
  for (let i = 0; i < n; i++) {
    if (i) await between?.();
    const r = await fn();
    if (!top || r.seconds < top.seconds) top = r;
  }
  return top!;
}

async function main_(): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(`${dir}/state`, { recursive: true });
  await fs.writeFile(`${dir}/hosts.yaml`, 'hosts:\n  ha: { transport: local, address: 127.0.0.2 }\n  hb: { transport: local, address: 127.0.0.3 }\n');
  const env = { ...process.env, FERRY_HOSTS: `${dir}/hosts.yaml`, FERRY_SYNC_STATE_DIR: `${dir}/state` };
  const src = `${dir}/src.img`;
  const dst = `${dir}/dst.img`;
  try {
    const layout = await makeImage(src);
    await run('sync', []);
    // Warm the page cache for everyone alike.
    await run('cat', [src]).catch(() => undefined);
    const rm = (p: string) => () => fs.rm(p, { force: true });

    // (a) full copy to an empty destination.
    const cp = await best(2, () => timed(() => run('cp', ['--sparse=always', src, `${dir}/cp.img`])).then((seconds) => ({ seconds })), rm(`${dir}/cp.img`));
    const cpSync = await timed(() => run('sync', [`${dir}/cp.img`]));
    await fs.rm(`${dir}/cp.img`);
    const qi = await best(2, () => timed(() => run('qemu-img', ['convert', '-O', 'raw', src, `${dir}/qi.img`])).then((seconds) => ({ seconds })), rm(`${dir}/qi.img`));
    const qiSync = await timed(() => run('sync', [`${dir}/qi.img`]));
    await fs.rm(`${dir}/qi.img`);
    await run('sync', []);
    const fullNoVerify = await best(2, () => ferrySync(env, ['--no-verify', `ha:${src}`, `hb:${dst}`]), rm(dst));
    await fs.rm(dst);
    await run('sync', []);
    const full = await ferrySync(env, [`ha:${src}`, `hb:${dst}`]);
    const fastest = Math.min(cp.seconds, qi.seconds);
    const fastestDurable = Math.min(cp.seconds + cpSync, qi.seconds + qiSync);

    // (b) 1% of the 1 MiB blocks change; ferry and rsync each update an old copy.
    await run('cp', ['--sparse=always', dst, `${dir}/rsync.img`]);
    const blocks = SIZE / MiB;
    const changed = new Set<number>();
    while (changed.size < blocks / 100) changed.add(randomInt(blocks));
    const fh = await fs.open(src, 'r+');
    const buf = Buffer.alloc(MiB);
    for (const b of changed) {
      randomFillSync(buf);
      await fh.write(buf, 0, MiB, b * MiB);
    }
    await fh.close();
    await run('sync', []);
    const delta = await ferrySync(env, [`ha:${src}`, `hb:${dst}`]);
    const rsync = await run('rsync', ['--inplace', '--no-whole-file', src, `${dir}/rsync.img`]);
    await run('cmp', [src, dst]);
    await run('cmp', [src, `${dir}/rsync.img`]);
    const bytesChanged = changed.size * MiB;

    const out = {
      image: { size_bytes: SIZE, ...layout, block_size: MiB },
      a_full_copy: {
        seconds: { cp_sparse: cp.seconds, qemu_img_convert: qi.seconds, cp_sparse_plus_fsync: cp.seconds + cpSync, qemu_img_convert_plus_fsync: qi.seconds + qiSync, ferry_no_verify: fullNoVerify.seconds, ferry_verify: full.seconds },
        ferry_result: full.result,
        ratio_vs_fastest_tool: { ferry_no_verify: fastest / fullNoVerify.seconds, ferry_verify: fastest / full.seconds },
        ratio_vs_fastest_tool_with_fsync: { ferry_no_verify: fastestDurable / fullNoVerify.seconds, ferry_verify: fastestDurable / full.seconds },
        goal: '>= 0.8',
      },
      b_resync_1_percent: {
        blocks_changed: changed.size,
        seconds: { ferry: delta.seconds, rsync_inplace_no_whole_file: rsync.seconds },
        ferry_result: delta.result,
        speedup_vs_rsync: rsync.seconds / delta.seconds,
        goal: '>= 5',
      },
      c_bytes_sent_vs_changed: {
        bytes_sent: delta.result.bytes_sent,
        bytes_changed: bytesChanged,
        ratio: (delta.result.bytes_sent as number) / bytesChanged,
        goal: '<= 1.1',
      },
      both_equal_checked_with_cmp: true,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main_();
