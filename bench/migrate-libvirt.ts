/**
 * `npm run bench:migrate-libvirt`: one libvirt domain (the test guest, TCG,
 * 256 MiB RAM, a 64 MiB qcow2 disk it writes to without pause) moves
 * between the lab's two libvirtds, back and forth, alternately with ferry
 * (`ferry migrate`, which checks, makes the target image and drives
 * libvirt) and with plain `virsh migrate --live --copy-storage-all`, the
 * target image made beforehand by hand as its users must; and a third time
 * with virsh given --copy-storage-synchronous-writes, which ferry always
 * asks for, so that ferry's own cost shows apart from that choice's. Prints
 * one JSON object: each one's median wall time and downtime (libvirt's own
 * "Total downtime" for all), the goals, and whether every record is intact.
 * FERRY_BENCH_RUNS migrations per tool (default 4). Progress on stderr.
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
const vm = `bench-lv-${process.pid}`;
const disk = labDiskPath(vm, 0);
/** FERRY_BENCH_DISK_MIB sizes the disk; FERRY_BENCH_FILL_MIB of it is written before the guest boots (the rest never is). */
const DISK_MIB = Number(process.env.FERRY_BENCH_DISK_MIB ?? 64);
const FILL_MIB = Number(process.env.FERRY_BENCH_FILL_MIB ?? 0);
const DISK_BYTES = DISK_MIB * 1024 * 1024;

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

async function completedDowntime(host: string): Promise<number | undefined> {
  const text = await labVirsh(host, ['domjobinfo', vm, '--completed']).catch(() => '');
  const ms = /Total downtime:\s+(\d+)\s*ms/.exec(text)?.[1];
  return ms === undefined ? undefined : Number(ms);
}

async function ferryRun(from: string, to: string): Promise<Run> {
  const r = await runCli(FERRY, ['migrate', vm, '--from', from, '--to', to, '--json', '--delete-source']);
  const report = JSON.parse(r.stdout || '{}') as { status?: string; downtime_ms?: number; error?: { message: string } };
  return { tool: 'ferry', from, to, ok: report.status === 'completed', wall_ms: r.ms, downtime_ms: report.downtime_ms, error: report.error?.message };
}

/** As a virsh user does it: the target image made by hand, then virsh migrate, then the old image removed. */
async function virshRun(agents: Record<string, AgentClient>, from: string, to: string, syncWrites = false): Promise<Run> {
  await agents[to]!.call('image.create', { path: disk, format: 'qcow2', sizeBytes: DISK_BYTES });
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
    run.downtime_ms = await completedDowntime(to);
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

function summary(rs: Run[]): Record<string, unknown> {
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

async function main(): Promise<void> {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`FERRY_BENCH_RUNS must be a whole number of at least 1, not "${process.env.FERRY_BENCH_RUNS}"`);
  progress('bringing the lab up');
  await labUp();
  const inv = loadInventory();
  const agents: Record<string, AgentClient> = { 'lab-a': await AgentClient.connect(findHost(inv, 'lab-a')), 'lab-b': await AgentClient.connect(findHost(inv, 'lab-b')) };
  const all: Run[] = [];
  let records: Record<string, unknown> | undefined;
  let at = 'lab-a';
  try {
    progress(`booting ${vm} as a libvirt domain on lab-a (TCG, 256 MiB RAM, ${DISK_MIB} MiB disk, ${FILL_MIB} MiB of it written)`);
    await agents['lab-a']!.call('image.create', { path: disk, format: 'qcow2', sizeBytes: DISK_BYTES });
    // Past the guest's record area at the start of the disk: data a full copy and an allocation-aware one both carry.
    if (FILL_MIB) await agents['lab-a']!.call('system.run', { file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P 0x5a ${Math.floor(DISK_MIB / 2)}M ${FILL_MIB}M`, disk] });
    await startLabDomain(agents['lab-a']!, { name: vm, disks: [disk] });
    await waitForGuestReady(agents['lab-a']!, vm);
    for (let i = 0; i < runs * 3; i++) {
      const to = at === 'lab-a' ? 'lab-b' : 'lab-a';
      const r = i % 3 === 0 ? await ferryRun(at, to) : await virshRun(agents, at, to, i % 3 === 2);
      all.push(r);
      progress(`${r.tool} ${at} -> ${to}: ${r.ok ? `wall ${r.wall_ms} ms, downtime ${r.downtime_ms} ms` : `FAILED: ${r.error}`}`);
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
      agents[host]!.close();
    }
  }
  const ferry = summary(all.filter((r) => r.tool === 'ferry'));
  const virsh = summary(all.filter((r) => r.tool === 'virsh'));
  const virshSync = summary(all.filter((r) => r.tool === 'virsh-sync'));
  const vsw = virshSync.wall_ms_median as number | undefined;
  const fw = ferry.wall_ms_median as number | undefined;
  const vw = virsh.wall_ms_median as number | undefined;
  const fd = ferry.downtime_ms_median as number | undefined;
  const vd = virsh.downtime_ms_median as number | undefined;
  const result = {
    bench: 'migrate-libvirt',
    guest: { memory_mib: 256, disk_mib: DISK_MIB, fill_mib: FILL_MIB, accel: 'tcg' },
    ferry,
    virsh,
    virsh_sync_writes: virshSync,
    wall_ratio: fw && vw ? Math.round((fw / vw) * 100) / 100 : undefined,
    // ferry against virsh with the same synchronous writes: what ferry adds of its own.
    wall_ratio_same_writes: fw && vsw ? Math.round((fw / vsw) * 100) / 100 : undefined,
    // ferry's fixed cost (agents, checks, target image, its own start and exit): the same on any disk, so the ratio falls as the disk grows.
    added_ms: fw !== undefined && vsw !== undefined ? { over_virsh: vw !== undefined ? Math.round(fw - vw) : undefined, over_virsh_same_writes: Math.round(fw - vsw) } : undefined,
    goals: { wall_ratio_max: 1.1, downtime: 'ferry <= virsh' },
    met: { wall: fw !== undefined && vw !== undefined && fw <= vw * 1.1, downtime: fd !== undefined && vd !== undefined && fd <= vd },
    records,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

await main();
process.exit(0);
