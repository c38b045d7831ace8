/**
 * `npm run bench:migrate-libvirt`: one libvirt domain (the test guest, TCG,
 * 256 MiB RAM, a qcow2 disk it writes to without pause) moves between the
 * lab's two libvirtds, back and forth, alternately with ferry (`ferry
 * migrate`, which checks, makes the target image and drives libvirt) and
 * with plain `virsh migrate --live --copy-storage-all`, the target image made
 * beforehand by hand as its users must; and a third time with virsh given
 * --copy-storage-synchronous-writes, which ferry always asks for, so that
 * ferry's own cost shows apart from that choice's. It does so on each disk
 * of FERRY_BENCH_DISKS in turn (a new guest each): a small one, where
 * ferry's fixed cost (its start, the agents, the checks, the image) shows
 * plainly, and one of a VM's size, where the wall-time goal is judged.
 * Prints one JSON object: per disk, each tool's median wall time and
 * downtime (libvirt's own "Total downtime" for all), and whether every
 * record is intact; then the goals and whether they are met.
 * FERRY_BENCH_RUNS migrations per tool and disk (default 4). Progress on
 * stderr.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/hosts/agent-client.js';
import { findHost, loadInventory } from '../src/hosts/inventory.js';
import { labUp, labVirsh, LAB_HOSTS } from '../src/lab/lab.js';
import { lastCounter } from '../src/lab/records.js';
import { labDiskPath, labDomainNames, labVmPaths, readSerial, startLabDomain, stopLabVm, waitForGuestReady } from '../src/lab/vm.js';

/** The ferry command as a user runs it (bin/ferry, which starts node as ferry means it to). */
const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const runs = Number(process.env.FERRY_BENCH_RUNS ?? 4);
const MiB = 1024 * 1024;

/** A disk the bench moves a guest on: its size, and how much of it is written before the guest boots (the rest never is). */
interface DiskSpec {
  disk_mib: number;
  fill_mib: number;
}

/** FERRY_BENCH_DISKS: "SIZE[:FILL],..." in MiB; by default a small disk, then 2 GiB holding 1 GiB. */
function parseDisks(text: string): DiskSpec[] {
  return text.split(',').map((item) => {
    const m = /^\s*(\d+)(?::(\d+))?\s*$/.exec(item);
    const spec = m && { disk_mib: Number(m[1]), fill_mib: Number(m[2] ?? 0) };
    if (!spec || spec.disk_mib < 64 || spec.fill_mib > spec.disk_mib / 2) {
      throw new Error(`FERRY_BENCH_DISKS: "${item}" is no disk; write SIZE[:FILL] in MiB, SIZE at least 64 and FILL at most half of it, e.g. "64,2048:1024"`);
    }
    return spec;
  });
}

interface Run {
  tool: 'ferry' | 'virsh' | 'virsh-sync';
  from: string;
  to: string;
  ok: boolean;
  wall_ms: number;
  downtime_ms?: number;
  error?: string;
}

const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

function runCli(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, ms: Math.round(performance.now() - t0) }));
  });
}

const address = (host: string): string => LAB_HOSTS.find((h) => h.name === host)!.address;
const uri = (host: string): string => `qemu+tcp://${address(host)}/system`;

/** The guest a series of moves runs on: its domain name and its one disk. */
interface Guest {
  vm: string;
  disk: string;
  spec: DiskSpec;
}

async function completedDowntime(host: string, vm: string): Promise<number | undefined> {
  const text = await labVirsh(host, ['domjobinfo', vm, '--completed']).catch(() => '');
  const ms = /Total downtime:\s+(\d+)\s*ms/.exec(text)?.[1];
  return ms === undefined ? undefined : Number(ms);
}

async function ferryRun({ vm }: Guest, from: string, to: string): Promise<Run> {
  const r = await runCli(FERRY, ['migrate', vm, '--from', from, '--to', to, '--json', '--delete-source']);
  const report = JSON.parse(r.stdout || '{}') as { status?: string; downtime_ms?: number; error?: { message: string } };
  return { tool: 'ferry', from, to, ok: report.status === 'completed', wall_ms: r.ms, downtime_ms: report.downtime_ms, error: report.error?.message };
}

/** As a virsh user does it: the target image made by hand, then virsh migrate, then the old image removed. */
async function virshRun(agents: Record<string, AgentClient>, { vm, disk, spec }: Guest, from: string, to: string, syncWrites = false): Promise<Run> {
  await agents[to]!.call('image.create', { path: disk, format: 'qcow2', sizeBytes: spec.disk_mib * MiB });
  const args = [
    '-c',
    uri(from),
    'migrate',
    '--live',
    '--p2p',
    '--persistent',
    '--undefinesource',
    '--copy-storage-all',
    ...(syncWrites ? ['--copy-storage-synchronous-writes'] : []),
    vm,
    uri(to),
    '--migrateuri',
    `tcp://${address(to)}`,
    '--disks-uri',
    `tcp://${address(to)}`,
  ];
  const r = await runCli('virsh', args);
  const run: Run = { tool: syncWrites ? 'virsh-sync' : 'virsh', from, to, ok: r.code === 0, wall_ms: r.ms, error: r.code === 0 ? undefined : r.stderr.trim() };
  if (run.ok) {
    run.downtime_ms = await completedDowntime(to, vm);
    await agents[from]!.call('file.remove', { path: disk });
  }
  return run;
}

function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Summary {
  runs: number;
  failed: number;
  wall_ms_median?: number;
  downtime_ms_median?: number;
  wall_ms: number[];
  downtime_ms: Array<number | undefined>;
  errors: Array<string | undefined>;
}

function summary(rs: Run[]): Summary {
  const ok = rs.filter((r) => r.ok);
  return {
    runs: rs.length,
    failed: rs.length - ok.length,
    wall_ms_median: median(ok.map((r) => r.wall_ms)),
    downtime_ms_median: median(ok.map((r) => r.downtime_ms ?? NaN).filter((x) => !Number.isNaN(x))),
    wall_ms: ok.map((r) => r.wall_ms),
    downtime_ms: ok.map((r) => r.downtime_ms),
    errors: rs.filter((r) => !r.ok).map((r) => r.error),
  };
}

const ratio = (x?: number, y?: number): number | undefined => (x && y ? Math.round((x / y) * 100) / 100 : undefined);

/** Boots a guest on `spec`'s disk, moves it runs x 3 times (ferry, virsh, virsh with synchronous writes, in turn), checks its records. */
interface DiskResult {
  guest: DiskSpec & { memory_mib: number; accel: string };
  ferry: Summary;
  virsh: Summary;
  virsh_sync_writes: Summary;
  wall_ratio?: number;
  wall_ratio_same_writes?: number;
  added_ms?: { over_virsh?: number; over_virsh_same_writes: number };
  records?: { ok: boolean; last_reported: number; missing: number; corrupt: number };
}

async function benchDisk(agents: Record<string, AgentClient>, spec: DiskSpec, n: number): Promise<DiskResult> {
  const name = `bench-lv${n}-${process.pid}`;
  const guest: Guest = { vm: name, disk: labDiskPath(name, 0), spec };
  const { vm, disk } = guest;
  const all: Run[] = [];
  let records: DiskResult['records'];
  let at = 'lab-a';
  try {
    progress(`booting ${vm} as a libvirt domain on lab-a (TCG, 256 MiB RAM, ${spec.disk_mib} MiB disk, ${spec.fill_mib} MiB of it written)`);
    await agents['lab-a']!.call('image.create', { path: disk, format: 'qcow2', sizeBytes: spec.disk_mib * MiB });
    // Past the guest's record area at the start of the disk: data a full copy and an allocation-aware one both carry.
    if (spec.fill_mib) await agents['lab-a']!.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P 0x5a ${Math.floor(spec.disk_mib / 2)}M ${spec.fill_mib}M`, disk] });
    await startLabDomain(agents['lab-a']!, { name: vm, disks: [disk] });
    await waitForGuestReady(agents['lab-a']!, vm);
    for (let i = 0; i < runs * 3; i++) {
      const to = at === 'lab-a' ? 'lab-b' : 'lab-a';
      const r = i % 3 === 0 ? await ferryRun(guest, at, to) : await virshRun(agents, guest, at, to, i % 3 === 2);
      all.push(r);
      progress(`${spec.disk_mib} MiB: ${r.tool} ${at} -> ${to}: ${r.ok ? `wall ${r.wall_ms} ms, downtime ${r.downtime_ms} ms` : `FAILED: ${r.error}`}`);
      if (!r.ok) break;
      at = to;
    }
    const last = lastCounter(await readSerial(agents[at]!, vm));
    await labVirsh(at, ['destroy', vm]);
    const check = await agents[at]!.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
    // Slots past the last record may hold the fill: only a reported record missing or damaged is a loss.
    records = { ok: check.missingCount === 0 && check.corruptReportedCount === 0, last_reported: check.lastReportedSeq, missing: check.missingCount, corrupt: check.corruptReportedCount };
  } finally {
    for (const host of ['lab-a', 'lab-b']) {
      if ((await labDomainNames(host)).includes(vm)) await stopLabVm(agents[host]!, vm);
      await agents[host]!.call('file.remove', { path: disk });
    }
  }
  const ferry = summary(all.filter((r) => r.tool === 'ferry'));
  const virsh = summary(all.filter((r) => r.tool === 'virsh'));
  const virshSync = summary(all.filter((r) => r.tool === 'virsh-sync'));
  const fw = ferry.wall_ms_median;
  const vw = virsh.wall_ms_median;
  const vsw = virshSync.wall_ms_median;
  return {
    guest: { memory_mib: 256, disk_mib: spec.disk_mib, fill_mib: spec.fill_mib, accel: 'tcg' },
    ferry,
    virsh,
    virsh_sync_writes: virshSync,
    wall_ratio: ratio(fw, vw),
    // ferry against virsh with the same synchronous writes: what ferry adds of its own.
    wall_ratio_same_writes: ratio(fw, vsw),
    // ferry's fixed cost (agents, checks, target image, its own start and exit): the same on any disk, so the ratio falls as the disk grows.
    added_ms: fw !== undefined && vsw !== undefined ? { over_virsh: vw !== undefined ? Math.round(fw - vw) : undefined, over_virsh_same_writes: Math.round(fw - vsw) } : undefined,
    records,
  };
}

async function main(): Promise<number> {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`FERRY_BENCH_RUNS must be a whole number of at least 1, not "${process.env.FERRY_BENCH_RUNS}"`);
  const specs = parseDisks(process.env.FERRY_BENCH_DISKS ?? '64,2048:1024');
  progress('bringing the lab up');
  await labUp();
  const inv = loadInventory();
  const agents: Record<string, AgentClient> = { 'lab-a': await AgentClient.connect(findHost(inv, 'lab-a')), 'lab-b': await AgentClient.connect(findHost(inv, 'lab-b')) };
  const disks: DiskResult[] = [];
  try {
    for (const [n, spec] of specs.entries()) disks.push(await benchDisk(agents, spec, n));
  } finally {
    for (const agent of Object.values(agents)) agent.close();
  }
  // The wall-time goal is judged on the largest disk, a VM's size; the smaller ones show the fixed cost. Downtime, on every disk.
  const largest = disks.reduce((x, y) => (y.guest.disk_mib > x.guest.disk_mib ? y : x));
  const fw = largest.ferry.wall_ms_median;
  const vw = largest.virsh.wall_ms_median;
  const result = {
    bench: 'migrate-libvirt',
    runs_per_tool: runs,
    disks,
    goals: { wall_ratio_max: 1.1, wall_judged_on_disk_mib: largest.guest.disk_mib, downtime: 'ferry <= virsh, on every disk' },
    met: {
      wall: fw !== undefined && vw !== undefined && fw <= vw * 1.1,
      downtime: disks.every((d) => d.ferry.downtime_ms_median !== undefined && d.virsh.downtime_ms_median !== undefined && d.ferry.downtime_ms_median <= d.virsh.downtime_ms_median),
      records: disks.every((d) => d.records?.ok === true),
    },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  // A move that failed or a record lost is a fault, not a figure.
  const failed = disks.some((d) => d.ferry.failed + d.virsh.failed + d.virsh_sync_writes.failed > 0);
  return failed || !result.met.records ? 1 : 0;
}

process.exit(await main());
