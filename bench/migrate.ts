/**
 * `npm run bench:migrate`: live-migrates one test guest (TCG, 256 MiB RAM,
 * a 64 MiB qcow2 disk it writes to without pause) between the lab hosts, back
 * and forth FERRY_BENCH_RUNS times (default 6), through the real CLI, and
 * prints one JSON object: downtime and total time (median, min, max), bytes
 * moved, the goals and whether the medians meet them, and whether every
 * record the guest reported is intact on its disk at the end.
 * Progress goes to stderr; stdout holds only the JSON.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/hosts/agent-client.js';
import { findHost, loadInventory } from '../src/hosts/inventory.js';
import { labUp } from '../src/lab/lab.js';
import { lastCounter } from '../src/lab/records.js';
import { labDiskPath, labVmPaths, readSerial, startLabVm, waitForGuestReady } from '../src/lab/vm.js';
import { run } from '../src/util/exec.js';

/** The ferry command as a user runs it (bin/ferry, which starts node as ferry means it to). */
const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const GOALS = { downtime_ms: 50, total_ms: 5000 };
const runs = Number(process.env.FERRY_BENCH_RUNS ?? 6);
const vm = `bench-${process.pid}`;
const disk = labDiskPath(vm, 0);

interface Report {
  status: string;
  downtime_ms?: number;
  qemu_downtime_ms?: number;
  total_ms: number;
  ram_bytes: number;
  disk_bytes: number;
  disk_zero_bytes?: number;
  phases?: Record<string, number>;
  error?: { code: string; message: string };
}

const SPARSE = { virtual_mib: 1024, data_mib: 16, bandwidth_mib: 20 };

/**
 * The sparse case: a large, mostly empty disk under a cap, there and back.
 * The cap should be spent on the data alone: were zeros counted, the mirror
 * would take the whole virtual size over the cap.
 */
async function sparseCase(a: AgentClient, b: AgentClient): Promise<Record<string, unknown>> {
  const name = `bench-sparse-${process.pid}`;
  const path = `/var/lib/ferry/images/${name}.qcow2`;
  const runsSparse = Number(process.env.FERRY_BENCH_SPARSE_RUNS ?? 2);
  const reports: Report[] = [];
  try {
    await a.call('image.create', { path, format: 'qcow2', sizeBytes: SPARSE.virtual_mib * 1024 * 1024 });
    await a.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P 0xa5 512M ${SPARSE.data_mib}M`, path] });
    progress(`booting ${name} on lab-a (${SPARSE.virtual_mib} MiB qcow2 holding ${SPARSE.data_mib} MiB)`);
    await startLabVm(a, { name, disks: [path], extraAppend: 'ferry.rate=20' });
    await waitForGuestReady(a, name);
    let from: 'lab-a' | 'lab-b' = 'lab-a';
    for (let i = 1; i <= runsSparse; i++) {
      const to: 'lab-a' | 'lab-b' = from === 'lab-a' ? 'lab-b' : 'lab-a';
      const r = await ferryMigrate(from, to, name, ['--bandwidth', String(SPARSE.bandwidth_mib)]);
      reports.push(r);
      progress(`sparse run ${i}/${runsSparse} ${from} -> ${to}: ${r.status}, mirror ${r.phases?.mirror} ms, total ${r.total_ms} ms, disk ${r.disk_bytes} bytes`);
      if (r.status !== 'completed') break;
      from = to;
    }
  } finally {
    for (const h of [a, b]) {
      const p = (await h.call('qemu.list', undefined)).find((x) => x.name === name);
      if (p) await h.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
      await h.call('file.remove', { path }).catch(() => undefined);
      const { serialLog, qmpSocket, pidfile } = labVmPaths(name);
      for (const f of [serialLog, qmpSocket, pidfile, `/run/ferry/${name}.incoming.pid`]) await h.call('file.remove', { path: f }).catch(() => undefined);
    }
  }
  const done = reports.filter((r) => r.status === 'completed');
  return {
    disk: SPARSE,
    runs: done.length,
    mirror_ms: stats(done.map((r) => r.phases?.mirror ?? 0)),
    total_ms: stats(done.map((r) => r.total_ms)),
    disk_bytes: stats(done.map((r) => r.disk_bytes)),
    disk_zero_bytes: stats(done.map((r) => r.disk_zero_bytes ?? 0)),
    mirror_ms_if_zeros_counted: Math.round((SPARSE.virtual_mib / SPARSE.bandwidth_mib) * 1000),
    failed: reports.filter((r) => r.status !== 'completed').map((r) => r.error),
  };
}

const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

function ferryMigrate(from: string, to: string, name = vm, extra: string[] = []): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY, ['migrate', name, '--from', from, '--to', to, '--json', '--delete-source', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as Report);
      } catch {
        reject(new Error(`ferry migrate printed no report: ${out}`));
      }
    });
  });
}

function stats(xs: number[]): { median: number; min: number; max: number } | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: Math.round(median * 10) / 10, min: s[0]!, max: s[s.length - 1]! };
}

async function stopEverywhere(hosts: AgentClient[]): Promise<void> {
  for (const h of hosts) {
    const p = (await h.call('qemu.list', undefined)).find((x) => x.name === vm);
    if (p) await h.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
  }
}

async function main(): Promise<void> {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`FERRY_BENCH_RUNS must be a whole number of at least 1, not "${process.env.FERRY_BENCH_RUNS}"`);
  progress('bringing the lab up');
  await labUp();
  const inv = loadInventory();
  const a = await AgentClient.connect(findHost(inv, 'lab-a'));
  const b = await AgentClient.connect(findHost(inv, 'lab-b'));
  const hosts = { 'lab-a': a, 'lab-b': b };
  const reports: Array<Report & { from: string; to: string }> = [];
  let records: { ok: boolean; last_reported: number; missing: number; corrupt: number } | undefined;
  let sparse: Record<string, unknown> | undefined;
  try {
    progress(`booting ${vm} on lab-a (TCG, 256 MiB RAM, 64 MiB disk)`);
    await startLabVm(a, { name: vm, disks: ['64M'] });
    await waitForGuestReady(a, vm);
    let from: 'lab-a' | 'lab-b' = 'lab-a';
    for (let i = 1; i <= runs; i++) {
      const to: 'lab-a' | 'lab-b' = from === 'lab-a' ? 'lab-b' : 'lab-a';
      const r = await ferryMigrate(from, to);
      reports.push({ ...r, from, to });
      if (r.status !== 'completed') {
        progress(`run ${i}/${runs} ${from} -> ${to}: ${r.status}: ${r.error?.code} ${r.error?.message}`);
        break;
      }
      progress(`run ${i}/${runs} ${from} -> ${to}: downtime ${r.downtime_ms} ms (QEMU ${r.qemu_downtime_ms} ms), total ${r.total_ms} ms`);
      from = to;
    }
    // The guest's own proof that no write was lost on the way.
    const where = hosts[from];
    const last = Math.max(lastCounter(await readSerial(a, vm)), lastCounter(await readSerial(b, vm)));
    await stopEverywhere([a, b]);
    const check = await where.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
    records = { ok: check.ok, last_reported: check.lastReportedSeq, missing: check.missingCount, corrupt: check.corrupt.length };
    sparse = await sparseCase(a, b);
  } finally {
    await stopEverywhere([a, b]).catch(() => undefined);
    for (const h of [a, b]) {
      await h.call('file.remove', { path: disk }).catch(() => undefined);
      const { serialLog, qmpSocket, pidfile } = labVmPaths(vm);
      for (const path of [serialLog, qmpSocket, pidfile, `/run/ferry/${vm}.incoming.pid`]) await h.call('file.remove', { path }).catch(() => undefined);
    }
    a.close();
    b.close();
  }

  const done = reports.filter((r) => r.status === 'completed');
  const downtime = stats(done.flatMap((r) => (r.downtime_ms === undefined ? [] : [r.downtime_ms])));
  const total = stats(done.map((r) => r.total_ms));
  const qemuVersion = (await run('qemu-system-x86_64', ['--version'])).stdout.match(/version (\S+)/)?.[1];
  const virsh = await run('sh', ['-c', 'command -v virsh'], { allowFailure: true });
  const result = {
    runs: done.length,
    runs_asked: runs,
    failed: reports.filter((r) => r.status !== 'completed').map((r) => ({ from: r.from, to: r.to, status: r.status, error: r.error })),
    guest: { accel: 'tcg', memory_mib: 256, disk_mib: 64, qemu: qemuVersion },
    downtime_ms: downtime,
    qemu_downtime_ms: stats(done.flatMap((r) => (r.qemu_downtime_ms === undefined ? [] : [r.qemu_downtime_ms]))),
    total_ms: total,
    ram_bytes: stats(done.map((r) => r.ram_bytes)),
    disk_bytes: stats(done.map((r) => r.disk_bytes)),
    goals: GOALS,
    met: { downtime_ms: !!downtime && downtime.median <= GOALS.downtime_ms, total_ms: !!total && total.median <= GOALS.total_ms },
    records,
    sparse,
    per_run: reports.map((r) => ({ from: r.from, to: r.to, status: r.status, downtime_ms: r.downtime_ms, qemu_downtime_ms: r.qemu_downtime_ms, total_ms: r.total_ms })),
    peer: virsh.exitCode === 0 ? { name: 'libvirt', skipped: 'installed but not benchmarked here' } : { name: 'libvirt', skipped: 'libvirt is not installed on this machine' },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (done.length < runs || !records?.ok) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
