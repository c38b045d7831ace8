/**
 * `npm run bench:sync`: `ferry sync` against the usual tools on a 4 GiB raw
 * image with realistic content (random data, compressible text, written
 * zeros and holes), between two agents on loopback. Prints one JSON object:
 *
 *  (a) full copy to an empty destination vs `qemu-img convert` and
 *      `cp --sparse=always` (ratio = faster tool's seconds / ferry's; goal >= 0.8);
 *  (b) re-sync after 1% of the 1 MiB blocks changed vs
 *      `rsync --inplace --no-whole-file` (speed-up; goal >= 5);
 *  (c) bytes ferry sent in (b) / bytes changed (goal <= 1.1).
 *
 * Tools are compared like for like (ferry's default also flushes and reads
 * back, so the tools are timed with and without a final `sync FILE`), in
 * interleaved rounds, each from the same state. bench/README.md explains the
 * method and each field.
 */
import { spawn } from 'node:child_process';
import { randomFillSync, randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;
const SIZE = 4096 * MiB;
const RUNS = Number(process.env.FERRY_BENCH_RUNS ?? 3);
const SETTLE_MS = Number(process.env.FERRY_BENCH_SETTLE_MS ?? 3000);
/** The ferry command as users run it (bin/ferry, from dist/bench/sync.js). */
const ferryCommand = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
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

/** Random data, text-like compressible data, written zeros, and holes. */
async function makeImage(path: string): Promise<Record<string, number>> {
  const fh = await fs.open(path, 'w');
  const layout = { random: 0, text: 0, zeros: 0 };
  try {
    await fh.truncate(SIZE);
    const buf = Buffer.alloc(MiB);
    const text = Buffer.from(Array.from({ length: 4000 }, (_, i) => `/usr/lib/x86_64-linux-gnu/lib${i % 97}.so.${i % 7} ferry block ${i * 7919}\n`).join(''));
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

/** Changes `count` random 1 MiB blocks of `path` to new random data; returns how many. */
async function changeBlocks(path: string, count: number): Promise<number> {
  const changed = new Set<number>();
  while (changed.size < count) changed.add(randomInt(SIZE / MiB));
  const fh = await fs.open(path, 'r+');
  const buf = Buffer.alloc(MiB);
  for (const b of changed) {
    randomFillSync(buf);
    await fh.write(buf, 0, MiB, b * MiB);
  }
  await fh.close();
  return changed.size;
}

type Ferry = { seconds: number; result: Record<string, number | string | boolean> };

async function main_(): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(`${dir}/state`, { recursive: true });
  await fs.writeFile(`${dir}/hosts.yaml`, 'hosts:\n  ha: { transport: local, address: 127.0.0.2 }\n  hb: { transport: local, address: 127.0.0.3 }\n');
  const env = { ...process.env, FERRY_HOSTS: `${dir}/hosts.yaml`, FERRY_SYNC_STATE_DIR: `${dir}/state` };
  const src = `${dir}/src.img`;
  const out = `${dir}/out.img`;
  const ferry = async (args: string[], dst = out): Promise<Ferry> => {
    const r = await run(ferryCommand, ['sync', '--json', ...args, `ha:${src}`, `hb:${dst}`], env);
    return { seconds: r.seconds, result: JSON.parse(r.stdout.trim().split('\n').pop()!) as Ferry['result'] };
  };
  /** The same starting state for every timed run (see the header). */
  const prepare = async (remove: string[], warm: string[]): Promise<void> => {
    for (const p of remove) await fs.rm(p, { force: true });
    await run('sync', []);
    for (const p of warm) await run('dd', [`if=${p}`, 'of=/dev/null', 'bs=1M', 'status=none']);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  };
  const fsync = async (p: string): Promise<number> => (await run('sync', [p])).seconds;
  const best = (xs: number[]): number => Math.min(...xs);
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  try {
    const layout = await makeImage(src);

    // (a) full copy to an empty destination, tools interleaved round by round.
    const a = { cp: [] as number[], cpSync: [] as number[], qi: [] as number[], qiSync: [] as number[], plain: [] as number[], noVerify: [] as number[], verify: [] as number[] };
    let full: Ferry | undefined;
    for (let round = 0; round < RUNS; round++) {
      await prepare([out], [src]);
      a.cp.push((await run('cp', ['--sparse=always', src, out])).seconds);
      a.cpSync.push(a.cp.at(-1)! + (await fsync(out)));
      await prepare([out], [src]);
      a.qi.push((await run('qemu-img', ['convert', '-O', 'raw', src, out])).seconds);
      a.qiSync.push(a.qi.at(-1)! + (await fsync(out)));
      await prepare([out], [src]);
      a.plain.push((await ferry(['--no-verify', '--no-fsync'])).seconds);
      await prepare([out], [src]);
      a.noVerify.push((await ferry(['--no-verify'])).seconds);
      await prepare([out], [src]);
      full = await ferry([]);
      a.verify.push(full.seconds);
    }
    await run('cmp', [src, out]);
    const fastest = Math.min(best(a.cp), best(a.qi));
    const fastestDurable = Math.min(best(a.cpSync), best(a.qiSync));

    // (b) 1% of the blocks change each round; ferry (into the copy it made and
    // remembers) and rsync (into its own copy) each bring theirs up to date.
    // ferry --rehash (into a copy it knows nothing of) reads both sides in full.
    const rsyncCopy = `${dir}/rsync.img`;
    const rehashCopy = `${dir}/rehash.img`;
    await run('cp', ['--sparse=always', out, rsyncCopy]);
    await run('cp', ['--sparse=always', out, rehashCopy]);
    const b = { ferry: [] as number[], rehash: [] as number[], rsync: [] as number[], sent: [] as number[], changedBytes: [] as number[], cached: [] as number[] };
    let delta: Ferry | undefined;
    for (let round = 0; round < RUNS; round++) {
      const changed = await changeBlocks(src, SIZE / MiB / 100);
      // An old copy looks old: otherwise rsync's size+mtime quick check may skip the file altogether.
      await run('touch', ['-d', '1 day ago', rsyncCopy]);
      await prepare([], [src, out]);
      delta = await ferry([]);
      b.ferry.push(delta.seconds);
      b.sent.push(delta.result.bytes_sent as number);
      b.changedBytes.push(changed * MiB);
      b.cached.push(delta.result.blocks_cached as number);
      await prepare([], [src, rehashCopy]);
      b.rehash.push((await ferry([], rehashCopy)).seconds);
      await prepare([], [src, rsyncCopy]);
      b.rsync.push((await run('rsync', ['--inplace', '--no-whole-file', src, rsyncCopy])).seconds);
    }
    for (const copy of [out, rehashCopy, rsyncCopy]) await run('cmp', [src, copy]);

    const report = {
      image: { size_bytes: SIZE, ...layout, block_size: MiB },
      rounds: RUNS,
      settle_ms: SETTLE_MS,
      a_full_copy: {
        seconds_best: {
          cp_sparse: best(a.cp),
          qemu_img_convert: best(a.qi),
          cp_sparse_plus_fsync: best(a.cpSync),
          qemu_img_convert_plus_fsync: best(a.qiSync),
          ferry_no_verify_no_fsync: best(a.plain),
          ferry_no_verify: best(a.noVerify),
          ferry_default_verify: best(a.verify),
        },
        seconds_all: a,
        ratio_vs_fastest_tool: best(a.plain) > 0 ? fastest / best(a.plain) : 0,
        ratio_durable_vs_fastest_tool_plus_fsync: fastestDurable / best(a.noVerify),
        ratio_default_verify_vs_fastest_tool_plus_fsync: fastestDurable / best(a.verify),
        ratio_vs_fastest_tool_medians: Math.min(median(a.cp), median(a.qi)) / median(a.plain),
        ferry_result: full?.result,
        goal: '>= 0.8',
      },
      b_resync_1_percent: {
        seconds_best: { ferry: best(b.ferry), ferry_rehash: best(b.rehash), rsync_inplace_no_whole_file: best(b.rsync) },
        seconds_all: { ferry: b.ferry, ferry_rehash: b.rehash, rsync: b.rsync },
        blocks_cached: b.cached,
        speedup_vs_rsync: best(b.rsync) / best(b.ferry),
        speedup_vs_rsync_rehash: best(b.rsync) / best(b.rehash),
        speedup_vs_rsync_medians: median(b.rsync) / median(b.ferry),
        ferry_result: delta?.result,
        goal: '>= 5',
      },
      c_bytes_sent_vs_changed: {
        bytes_sent: b.sent,
        bytes_changed: b.changedBytes,
        ratio: Math.max(...b.sent.map((s, i) => s / b.changedBytes[i]!)),
        goal: '<= 1.1',
      },
      all_copies_equal_checked_with_cmp: true,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main_();
