/**
 * `npm run bench:warm`: one test guest on a raw disk (FERRY_BENCH_DISK_MIB,
 * default 2048, FERRY_BENCH_FILL_MIB of it written before boot) moves twice
 * in one run: lab-a -> lab-b by seed 001's procedure (blocksync, QEMU's own
 * save to a file, blocksync again, the state copied over ssh, QEMU restored
 * on the target), then lab-b -> lab-a by ferry's warm move
 * (`--precopy-only`, then `--cutover`). Between the two passes of each,
 * FERRY_BENCH_CHANGE_MIB (default 20) is written through the running
 * guest's block device. Prints one JSON object: each procedure's downtime,
 * the bytes read from the source's disk after the change, the goals, and
 * whether every record the guest reported is intact after each move.
 * Progress goes to stderr; stdout holds only the JSON.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/hosts/agent-client.js';
import { findHost, loadInventory } from '../src/hosts/inventory.js';
import { labExecArgv, labUp } from '../src/lab/lab.js';
import { lastCounter, RECORD_SIZE } from '../src/lab/records.js';
import { LAB_IMAGE_DIR, LAB_VM_DIR, labVmPaths, readSerial, startLabVm, waitForGuestReady } from '../src/lab/vm.js';
import type { QmpEvent } from '../src/qmp/client.js';
import { sleep } from '../src/util/abort.js';
import { run } from '../src/util/exec.js';

/** The ferry command as a user runs it (bin/ferry, which starts node as ferry means it to). */
const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const BLOCKSYNC = fileURLToPath(new URL('../../bench/peers/blocksync.py', import.meta.url));
const MiB = 1024 * 1024;
const GOALS = { downtime_ratio_max: 0.1, final_read_over_changed_max: 2 };

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = Number(raw ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number of MiB, at least 1, not "${raw}"`);
  return value;
}

const DISK_MIB = knob('FERRY_BENCH_DISK_MIB', 2048);
const FILL_MIB = knob('FERRY_BENCH_FILL_MIB', 1024);
const CHANGE_MIB = knob('FERRY_BENCH_CHANGE_MIB', 20);
/** The guest's own writes: about this many 4 KiB records a second, all the time. */
const GUEST_RATE = knob('FERRY_BENCH_GUEST_RATE', 10);
/** The fill ends the disk; the change lands a quarter in, well past the guest's records and before the fill. */
const FILL_OFFSET_MIB = DISK_MIB - FILL_MIB;
const CHANGE_OFFSET_MIB = Math.floor(DISK_MIB / 4);
const vm = `bench-warm-${process.pid}`;
const disk = join(LAB_IMAGE_DIR, `${vm}.raw`);
const stateFile = join(LAB_VM_DIR, `${vm}.state`);
const HOW_WRITTEN = `QMP human-monitor-command "qemu-io drive0 write -P PATTERN ${CHANGE_OFFSET_MIB}M ${CHANGE_MIB}M" on the source QEMU while the guest runs: a write through the guest's block device, as a guest write would be`;

const progress = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

/** A QMP session held through a lab host's agent, keeping the events it sees. */
class Monitor {
  readonly events: QmpEvent[] = [];
  private constructor(
    private readonly agent: AgentClient,
    private readonly session: number,
  ) {
    agent.on('notification', (method: string, params: { session: number; event: QmpEvent }) => {
      if (method === 'qmp.event' && params.session === session) this.events.push(params.event);
    });
  }

  static async open(agent: AgentClient): Promise<Monitor> {
    const { session } = await agent.call('qmp.open', { socket: labVmPaths(vm).qmpSocket, timeoutMs: 30_000 });
    return new Monitor(agent, session);
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    return this.agent.call('qmp.execute', { session: this.session, command, arguments: args, timeoutMs: 600_000 }) as Promise<T>;
  }

  /** QEMU's timestamp of the first event of that name. */
  eventMs(name: string): number | undefined {
    return this.events.find((e) => e.event === name)?.timestampMs;
  }

  /** QEMU's QMP socket takes one client at a time: close before ferry needs it. */
  close(): Promise<void> {
    return this.agent.call('qmp.close', { session: this.session });
  }
}

/** Writes CHANGE_MIB through the running guest's drive, with a pattern the target does not hold yet. */
async function changeDisk(agent: AgentClient, pattern: number): Promise<void> {
  const monitor = await Monitor.open(agent);
  try {
    const out = await monitor.execute<string>('human-monitor-command', {
      'command-line': `qemu-io drive0 "write -P 0x${pattern.toString(16)} ${CHANGE_OFFSET_MIB}M ${CHANGE_MIB}M"`,
    });
    // HMP's qemu-io prints nothing on success; an error comes back as text.
    if (out.trim() && !/wrote/.test(out)) throw new Error(`qemu-io did not write: ${out.trim()}`);
  } finally {
    await monitor.close();
  }
  // Proof that the change is on the source's disk (cache=none: nothing waits in QEMU).
  const r = await agent.call('system.run', { file: 'qemu-io', args: ['-f', 'raw', '-U', '-r', '-c', `read -P 0x${pattern.toString(16)} ${CHANGE_OFFSET_MIB}M ${CHANGE_MIB}M`, disk] });
  if (r.exitCode !== 0 || !/^read \d+\/\d+ bytes/m.test(r.stdout) || /fail/i.test(r.stdout + r.stderr)) {
    throw new Error(`the change is not on the source's disk: ${(r.stdout + r.stderr).trim()}`);
  }
}

interface BlocksyncStats {
  blocks: number;
  diff_blocks: number;
  source_bytes_read: number;
  bytes_sent: number;
  seconds: number;
}

/** One blocksync pass, run on lab-a (the source) against its server half on lab-b over the lab's ssh. */
async function blocksync(sshConfig: string): Promise<BlocksyncStats & { ms: number }> {
  const t0 = performance.now();
  const [file, ...args] = await labExecArgv('lab-a', ['python3', BLOCKSYNC, '--remote', `ssh -F ${sshConfig} lab-b`, disk, disk]);
  const r = await run(file!, args, { timeoutMs: 3_600_000 });
  const stats = JSON.parse(r.stdout.trim().split('\n').pop()!) as BlocksyncStats;
  return { ...stats, ms: Math.round(performance.now() - t0) };
}

async function counter(agents: AgentClient[]): Promise<number> {
  let last = 0;
  for (const agent of agents) last = Math.max(last, lastCounter(await readSerial(agent, vm)));
  return last;
}

/**
 * After a move: the guest keeps writing on its new host (a few more
 * records reported there), and every record it reported on either host is
 * on the disk it now runs from. The disk is raw, read as it is while the
 * guest runs: records reported are durable (cache=none), later ones may not
 * be there yet and are not asked for.
 */
async function checkRecords(on: AgentClient, agents: AgentClient[], atMove: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 120_000;
  while (lastCounter(await readSerial(on, vm)) < atMove + 5) {
    if (Date.now() > deadline) return { ok: false, problem: `the guest reported no new record on ${on.host.name} within 120 s after the move` };
    await sleep(500);
  }
  const last = await counter(agents);
  const check = await on.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
  return {
    ok: check.missingCount === 0 && check.corruptReportedCount === 0,
    host: on.host.name,
    last_reported: check.lastReportedSeq,
    reported_after_move: last - atMove,
    missing: check.missingCount,
    corrupt: check.corruptReportedCount,
  };
}

/**
 * Seed 001's procedure, adapted to QEMU: blocksync while the VM runs; stop
 * it and save its state to a file with QEMU's migrate to exec:; blocksync
 * again (only changed blocks cross, every block is read and hashed); copy
 * the state over ssh; start QEMU on the target with the same command line
 * and -incoming from the file; cont. Downtime: stop to RESUME.
 */
async function seedProcedure(a: AgentClient, b: AgentClient, argv: string[], sshConfig: string): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  await b.call('image.create', { path: disk, format: 'raw', sizeBytes: DISK_MIB * MiB });
  const startCounter = await counter([a]);
  progress('seed: pass 1 (blocksync while the guest runs)');
  const pass1 = await blocksync(sshConfig);
  progress(`seed: pass 1 read ${pass1.source_bytes_read} bytes, sent ${pass1.diff_blocks} blocks in ${pass1.ms} ms`);
  await changeDisk(a, 0x5a);
  progress(`seed: wrote ${CHANGE_MIB} MiB through the guest's drive`);

  const source = await Monitor.open(a);
  const tStop = performance.now();
  await source.execute('stop');
  const stopCounter = await counter([a]);
  await source.execute('migrate', { uri: `exec:cat > ${stateFile}` });
  for (;;) {
    const m = await source.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (m.status === 'completed') break;
    if (m.status === 'failed' || m.status === 'cancelled') throw new Error(`saving the state failed: ${m['error-desc'] ?? m.status}`);
    await sleep(20);
  }
  const tSaved = performance.now();
  const stopMs = source.eventMs('STOP');
  const pid = (await a.call('qemu.list', undefined)).find((p) => p.name === vm)?.pid;
  await source.execute('quit').catch(() => undefined);
  await source.close().catch(() => undefined);
  for (let i = 0; pid && i < 200 && (await a.call('qemu.alive', { pid })).alive; i++) await sleep(50);
  const tQuit = performance.now();

  progress('seed: pass 2 (blocksync with the guest saved)');
  const pass2 = await blocksync(sshConfig);
  progress(`seed: pass 2 read ${pass2.source_bytes_read} bytes, sent ${pass2.diff_blocks} blocks in ${pass2.ms} ms`);
  const tCopy = performance.now();
  const [file, ...args] = await labExecArgv('lab-a', ['sh', '-c', `ssh -F ${sshConfig} lab-b 'cat > ${stateFile}' < ${stateFile}`]);
  await run(file!, args, { timeoutMs: 600_000 });
  const stateBytes = (await a.call('file.stat', { path: stateFile })).size ?? 0;
  const tCopied = performance.now();

  // The same command line, the state coming in from the file.
  await b.call('qemu.start', { argv: [...argv, '-incoming', `exec:cat ${stateFile}`], pidfile: labVmPaths(vm).pidfile });
  const target = await Monitor.open(b);
  for (;;) {
    const s = await target.execute<{ status: string }>('query-status');
    if (s.status !== 'inmigrate') break;
    await sleep(10);
  }
  await target.execute('cont');
  const tResumed = performance.now();
  await sleep(200); // the RESUME event's notification is on its way
  const resumeMs = target.eventMs('RESUME');
  await target.close();
  await a.call('file.remove', { path: stateFile });
  await b.call('file.remove', { path: stateFile });
  await a.call('file.remove', { path: disk });

  const records = await checkRecords(b, [a, b], stopCounter);
  const guestRecordBytes = (stopCounter - startCounter) * RECORD_SIZE;
  const downtime = stopMs !== undefined && resumeMs !== undefined ? Math.round(resumeMs - stopMs) : Math.round(tResumed - tStop);
  return {
    direction: 'lab-a -> lab-b',
    status: records.ok ? 'completed' : 'records-lost',
    downtime_ms: downtime,
    downtime_ms_wall: Math.round(tResumed - tStop),
    downtime_from: stopMs !== undefined && resumeMs !== undefined ? "QEMU's STOP (source) to RESUME (target) event timestamps" : 'the bench: stop sent to cont answered',
    final_pass_read_bytes: pass2.source_bytes_read,
    final_pass_sent_bytes: pass2.bytes_sent,
    changed_bytes: CHANGE_MIB * MiB + guestRecordBytes,
    guest_record_bytes: guestRecordBytes,
    state_bytes: stateBytes,
    total_ms: Math.round(tResumed - t0),
    pause_steps_ms: {
      save_state: Math.round(tSaved - tStop),
      quit: Math.round(tQuit - tSaved),
      pass2: pass2.ms,
      copy_state: Math.round(tCopied - tCopy),
      restore_and_cont: Math.round(tResumed - tCopied),
    },
    passes: [
      { pass: 1, while: 'running', ...pass1 },
      { pass: 2, while: 'saved', ...pass2 },
    ],
    records,
  };
}

interface WarmReport {
  status: string;
  mode?: string;
  downtime_ms?: number;
  qemu_downtime_ms?: number;
  passes?: Array<{ pass: number; kind: string; stage: string; bytes: number; ms: number; pending_bytes?: number }>;
  final_pass_bytes?: number;
  disk_bytes: number;
  ram_bytes?: number;
  total_ms: number;
  phases?: Record<string, number>;
  error?: { code: string; message: string; hint?: string };
}

function ferry(args: string[]): Promise<WarmReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY, ['migrate', vm, '--from', 'lab-b', '--to', 'lab-a', '--mode', 'warm', '--json', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as WarmReport);
      } catch {
        reject(new Error(`ferry migrate printed no report: ${out}`));
      }
    });
  });
}

/**
 * ferry's warm move, split where seed 001's procedure has its two passes:
 * `--precopy-only` (passes while the guest runs, until they are small),
 * the change, then `--cutover` (catch-up passes, the RAM, the last pass at
 * the pause).
 */
async function ferryProcedure(a: AgentClient, b: AgentClient): Promise<Record<string, unknown>> {
  const startCounter = await counter([b]);
  progress('ferry: --precopy-only');
  const precopy = await ferry(['--precopy-only']);
  if (precopy.status !== 'precopied') throw new Error(`ferry --precopy-only ended ${precopy.status}: ${precopy.error?.message}`);
  progress(`ferry: pre-copied ${precopy.disk_bytes} bytes in ${precopy.passes?.length} passes, ${precopy.total_ms} ms`);
  await changeDisk(b, 0xa5);
  progress(`ferry: wrote ${CHANGE_MIB} MiB through the guest's drive`);
  progress('ferry: --cutover');
  const cutover = await ferry(['--cutover', '--delete-source']);
  if (cutover.status !== 'completed') throw new Error(`ferry --cutover ended ${cutover.status}: ${cutover.error?.message}`);
  const endCounter = await counter([a, b]);
  progress(`ferry: cut over, downtime ${cutover.downtime_ms} ms, the last pass ${cutover.final_pass_bytes} bytes`);
  const records = await checkRecords(a, [a, b], endCounter);
  const guestRecordBytes = (endCounter - startCounter) * RECORD_SIZE;
  const afterChange = (cutover.passes ?? []).reduce((s, p) => s + p.bytes, 0);
  return {
    direction: 'lab-b -> lab-a',
    status: records.ok ? 'completed' : 'records-lost',
    downtime_ms: cutover.downtime_ms,
    qemu_downtime_ms: cutover.qemu_downtime_ms,
    final_pass_bytes: cutover.final_pass_bytes,
    after_change_read_bytes: afterChange,
    changed_bytes: CHANGE_MIB * MiB + guestRecordBytes,
    guest_record_bytes: guestRecordBytes,
    total_ms: precopy.total_ms + cutover.total_ms,
    precopy_only: { status: precopy.status, total_ms: precopy.total_ms, disk_bytes: precopy.disk_bytes, passes: precopy.passes },
    cutover: { status: cutover.status, total_ms: cutover.total_ms, disk_bytes: cutover.disk_bytes, ram_bytes: cutover.ram_bytes, passes: cutover.passes, phases: cutover.phases },
    records,
  };
}

async function stopEverywhere(agents: AgentClient[]): Promise<void> {
  for (const h of agents) {
    const p = (await h.call('qemu.list', undefined)).find((x) => x.name === vm);
    if (p) await h.call('qemu.kill', { pid: p.pid, signal: 'SIGKILL' });
  }
}

async function main(): Promise<void> {
  if (FILL_MIB > DISK_MIB / 2) throw new Error(`FERRY_BENCH_FILL_MIB (${FILL_MIB}) must be at most half of FERRY_BENCH_DISK_MIB (${DISK_MIB})`);
  if (CHANGE_MIB > DISK_MIB / 4) throw new Error(`FERRY_BENCH_CHANGE_MIB (${CHANGE_MIB}) must be at most a quarter of FERRY_BENCH_DISK_MIB (${DISK_MIB})`);
  progress('bringing the lab up');
  const { state } = await labUp();
  const sshConfig = join(state.dir, 'ssh', 'ssh_config');
  const inv = loadInventory();
  const a = await AgentClient.connect(findHost(inv, 'lab-a'));
  const b = await AgentClient.connect(findHost(inv, 'lab-b'));
  let seed: Record<string, unknown> | undefined;
  let warm: Record<string, unknown> | undefined;
  let failure: string | undefined;
  try {
    progress(`making ${disk} on lab-a: ${DISK_MIB} MiB raw, ${FILL_MIB} MiB of it written`);
    await a.call('image.create', { path: disk, format: 'raw', sizeBytes: DISK_MIB * MiB });
    await a.call('system.run', { file: 'qemu-io', args: ['-f', 'raw', '-c', `write -P 0x3c ${FILL_OFFSET_MIB}M ${FILL_MIB}M`, disk] });
    progress(`booting ${vm} on lab-a (256 MiB RAM, about ${GUEST_RATE} records of 4 KiB a second)`);
    const started = await startLabVm(a, { name: vm, disks: [disk], extraAppend: `ferry.rate=${GUEST_RATE}` });
    await waitForGuestReady(a, vm);
    seed = await seedProcedure(a, b, started.argv, sshConfig);
    warm = await ferryProcedure(a, b);
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
    progress(`failed: ${failure}`);
  } finally {
    await stopEverywhere([a, b]).catch(() => undefined);
    for (const h of [a, b]) {
      const { serialLog, qmpSocket, pidfile } = labVmPaths(vm);
      for (const path of [disk, stateFile, serialLog, qmpSocket, pidfile, `/run/ferry/${vm}.incoming.pid`]) await h.call('file.remove', { path }).catch(() => undefined);
    }
    a.close();
    b.close();
  }

  const ratio = (x: unknown, y: unknown): number | undefined => (typeof x === 'number' && typeof y === 'number' && y > 0 ? Math.round((x / y) * 1000) / 1000 : undefined);
  const downtimeRatio = ratio(warm?.downtime_ms, seed?.downtime_ms);
  const ferryReadOverChanged = ratio(warm?.after_change_read_bytes, CHANGE_MIB * MiB);
  const qemuVersion = (await run('qemu-system-x86_64', ['--version'])).stdout.match(/version (\S+)/)?.[1];
  const result = {
    bench: 'warm',
    guest: { memory_mib: 256, disk_format: 'raw', disk_mib: DISK_MIB, fill_mib: FILL_MIB, records_per_second: GUEST_RATE, qemu: qemuVersion },
    disk_bytes: DISK_MIB * MiB,
    changed_bytes: CHANGE_MIB * MiB,
    changes_made_by: HOW_WRITTEN,
    ferry: warm,
    seed_procedure: seed,
    downtime_ratio: downtimeRatio,
    final_read_over_changed: { ferry: ferryReadOverChanged, seed_procedure: ratio(seed?.final_pass_read_bytes, CHANGE_MIB * MiB) },
    goals: GOALS,
    met: {
      downtime: downtimeRatio !== undefined && downtimeRatio <= GOALS.downtime_ratio_max,
      final_read: ferryReadOverChanged !== undefined && ferryReadOverChanged <= GOALS.final_read_over_changed_max,
      records: (seed?.records as { ok?: boolean } | undefined)?.ok === true && (warm?.records as { ok?: boolean } | undefined)?.ok === true,
    },
    error: failure,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (failure || !result.met.records) process.exitCode = 1;
}

await main();
process.exit(process.exitCode ?? 0);
