/**
 * Boots ferry's test guest under real QEMU (TCG), stops it hard or cleanly,
 * and proves with the record checker that every record the guest reported on
 * its serial console is on its disk(s), and that the checker does notice
 * damage.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTestGuest, type TestGuest } from '../../src/lab/guest-image.js';
import { GUEST_READY, RECORD_SIZE, checkImage, lastCounter, verifyReported } from '../../src/lab/records.js';
import { labVmArgv } from '../../src/lab/vm.js';
import { QmpClient } from '../../src/qmp/client.js';
import { sleep } from '../../src/util/abort.js';
import { FerryError } from '../../src/util/errors.js';
import { run } from '../../src/util/exec.js';

let guest: TestGuest;
let dir: string;
const running = new Set<ChildProcess>();
/** RAM dirty rate of a guest without ferry.dirty, measured by the first test. */
let quietDirtyRate: number | undefined;

before(async () => {
  guest = await ensureTestGuest();
  dir = await mkdtemp(join(tmpdir(), 'ferry-e2e-guest-'));
});

after(async () => {
  for (const p of running) p.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Booted {
  qemu: ChildProcess;
  log: string;
  qmp: string;
  disks: string[];
  startedAt: number;
}

async function boot(name: string, diskCount: number, extraAppend?: string): Promise<Booted> {
  const disks: string[] = [];
  for (let i = 0; i < diskCount; i++) {
    const path = join(dir, `${name}-${i}.qcow2`);
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', path, '64M']);
    disks.push(path);
  }
  const log = join(dir, `${name}.log`);
  const qmp = join(dir, `${name}.qmp`);
  // As the lab starts it, but under TCG whatever the host offers (the rates below are TCG's), and
  // through the host's page cache: a temporary directory may be a tmpfs, which refuses O_DIRECT.
  const [binary, ...args] = labVmArgv({
    name,
    kernel: guest.kernel,
    initrd: guest.initrd,
    append: extraAppend ? `${guest.append} ${extraAppend}` : guest.append,
    accel: 'tcg',
    disks: disks.map((path) => ({ path, format: 'qcow2' })),
    cache: 'writeback',
    serialLog: log,
    qmpSocket: qmp,
  });
  const startedAt = performance.now();
  const qemu = spawn(binary!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  qemu.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  qemu.on('exit', () => running.delete(qemu));
  qemu.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) console.error(`qemu exited with ${code}: ${stderr}`);
  });
  running.add(qemu);
  return { qemu, log, qmp, disks, startedAt };
}

async function serial(b: Booted): Promise<string> {
  return readFile(b.log, 'utf8').catch(() => '');
}

/** Polls the serial log until `ready` holds; returns the time it first did. */
async function waitForSerial(b: Booted, what: string, ready: (text: string) => boolean, timeoutMs = 90_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (ready(await serial(b))) return performance.now();
    if (b.qemu.exitCode !== null || b.qemu.signalCode !== null) assert.fail(`QEMU exited before ${what}:\n${await serial(b)}`);
    if (performance.now() > deadline) assert.fail(`No ${what} after ${timeoutMs} ms; serial log:\n${await serial(b)}`);
    await sleep(100);
  }
}

async function stopped(b: Booted): Promise<void> {
  if (b.qemu.exitCode === null && b.qemu.signalCode === null) await once(b.qemu, 'exit');
}

/** Guest RAM dirtied per second, in MiB, as QEMU measures it over one second. */
async function dirtyRateMiB(socket: string): Promise<number> {
  const qmp = await QmpClient.connect(socket);
  try {
    // Page sampling (by content hash): QEMU 7.2 under TCG crashes in mode dirty-bitmap.
    await qmp.execute('calc-dirty-rate', { 'calc-time': 1, 'sample-pages': 4096 });
    for (;;) {
      await sleep(300);
      const r = await qmp.execute<{ status: string; 'dirty-rate'?: number }>('query-dirty-rate');
      if (r.status === 'measured') return r['dirty-rate'] ?? 0;
    }
  } finally {
    qmp.close();
  }
}

test('every record reported before SIGKILL is intact on the qcow2 disk, and damage is caught', async (t) => {
  const b = await boot('sigkill', 1);
  const readyAt = await waitForSerial(b, GUEST_READY, (s) => s.includes(GUEST_READY));
  assert.doesNotMatch(await serial(b), /cannot load module/, 'every virtio module loads, in the order /init loads them');
  const t1 = await waitForSerial(b, 'record 30', (s) => lastCounter(s) >= 30);
  const c1 = lastCounter(await serial(b));
  quietDirtyRate = await dirtyRateMiB(b.qmp);
  await sleep(1500);
  const c2 = lastCounter(await serial(b));
  const t2 = performance.now();
  b.qemu.kill('SIGKILL');
  await stopped(b);
  t.diagnostic(`boot to ${GUEST_READY}: ${((readyAt - b.startedAt) / 1000).toFixed(1)} s; records: ${(((c2 - c1) * 1000) / (t2 - t1)).toFixed(0)}/s under TCG; RAM dirtied: ${quietDirtyRate} MiB/s`);

  const last = lastCounter(await serial(b));
  assert.ok(last >= 30, `only ${last} records reported`);
  const disk = await checkImage(b.disks[0]!, 'qcow2', { diskId: 'vda' });
  const verdict = verifyReported([disk], last);
  assert.deepEqual(verdict, { ok: true, lastReportedSeq: last, missing: [], corrupt: [], problems: [] });
  assert.ok(disk.highestSeq >= last && disk.highestSeq <= last + 2, `disk holds up to ${disk.highestSeq}, serial says ${last}`);

  // The same disk as raw gives the same answer.
  const raw = join(dir, 'sigkill.raw');
  await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', b.disks[0]!, raw]);
  assert.deepEqual((await checkImage(raw, 'raw')).seqs, disk.seqs);

  // Garbage over record 10 and zeros over record 20: the checker must fail.
  await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a ${9 * RECORD_SIZE + 512} 512`, '-c', `write -z ${19 * RECORD_SIZE} ${RECORD_SIZE}`, b.disks[0]!]);
  const damaged = verifyReported([await checkImage(b.disks[0]!, 'qcow2')], last);
  assert.equal(damaged.ok, false);
  assert.deepEqual(damaged.missing, [10, 20]);
  assert.deepEqual(
    damaged.corrupt.map((c) => [c.slot, c.seq]),
    [[9, 10]],
  );
  assert.match(damaged.corrupt[0]!.reason, /checksum mismatch/);
});

test('a guest with two disks alternates records between them and a QMP quit loses none', async () => {
  const b = await boot('two-disks', 2);
  await waitForSerial(b, 'record 30', (s) => s.includes(GUEST_READY) && lastCounter(s) >= 30);
  const qmp = await QmpClient.connect(b.qmp);
  // QEMU may drop the connection as it quits, before its answer: that is an answer too.
  await qmp.execute('quit').catch((e: unknown) => assert.ok(e instanceof FerryError && e.code === 'QMP_CLOSED', String(e)));
  qmp.close();
  await stopped(b);
  assert.equal(b.qemu.exitCode, 0);

  const text = await serial(b);
  assert.match(text, /FERRY-GUEST disks=vda,vdb slots=16384,16384/);
  const last = lastCounter(text);
  const disks = [await checkImage(b.disks[0]!, 'qcow2', { diskId: 'vda' }), await checkImage(b.disks[1]!, 'qcow2', { diskId: 'vdb' })];
  assert.ok(disks[0]!.seqs.every((n) => n % 2 === 1) && disks[1]!.seqs.every((n) => n % 2 === 0));
  assert.ok(disks[0]!.intact >= 15 && disks[1]!.intact >= 15);
  assert.deepEqual(verifyReported(disks, last), { ok: true, lastReportedSeq: last, missing: [], corrupt: [], problems: [] });
  // Checking only one of the two disks cannot pass.
  assert.equal(verifyReported([disks[0]!], last).ok, false);
});

test('with ferry.dirty the guest keeps writing records and SIGTERM loses none', async (t) => {
  const b = await boot('dirty', 1, 'ferry.dirty=16');
  await waitForSerial(b, 'record 30', (s) => s.includes(GUEST_READY) && lastCounter(s) >= 30);
  const rate = await dirtyRateMiB(b.qmp);
  t.diagnostic(`RAM dirtied with ferry.dirty=16: ${rate} MiB/s (without: ${quietDirtyRate} MiB/s)`);
  assert.ok(rate >= 8, `ferry.dirty=16 dirtied only ${rate} MiB/s`);
  if (quietDirtyRate !== undefined) assert.ok(quietDirtyRate < rate / 2, `a quiet guest dirties ${quietDirtyRate} MiB/s, with ferry.dirty=16 ${rate}`);
  b.qemu.kill('SIGTERM');
  await stopped(b);
  const text = await serial(b);
  assert.match(text, /dirty=16/);
  const last = lastCounter(text);
  assert.deepEqual(verifyReported([await checkImage(b.disks[0]!)], last).missing, []);
  assert.equal(verifyReported([await checkImage(b.disks[0]!)], last).ok, true);
});

test('the initramfs holds each module its /init loads, after every module it depends on', async () => {
  const tree = join(dir, 'initramfs');
  await mkdir(tree);
  await run('sh', ['-c', 'gzip -dc "$1" | cpio -id --quiet', 'sh', guest.initrd], { cwd: tree });
  const init = await readFile(join(tree, 'init'), 'utf8');
  const order = /^for m in ([^;]+); do$/m.exec(init)?.[1]?.split(' ') ?? [];
  assert.ok(order.includes('virtio_blk'), `/init loads no virtio_blk:\n${init}`);
  for (const [i, name] of order.entries()) {
    // The kernel's modinfo strings: NUL-separated key=value, "depends=" listing what must be loaded first.
    const modinfo = (await readFile(join(tree, 'lib/modules', `${name}.ko`))).toString('latin1');
    const depends = /(?:^|\0)depends=([^\0]*)\0/.exec(modinfo)?.[1];
    assert.notEqual(depends, undefined, `${name}.ko has no depends= in its modinfo`);
    for (const dep of depends ? depends.split(',') : []) {
      const at = order.indexOf(dep);
      assert.ok(at >= 0 && at < i, `${name} needs ${dep}, which /init loads ${at < 0 ? 'never' : 'after it'}`);
    }
  }
});

test('two processes building the test guest at once into an empty cache agree on one build', async () => {
  const cache = join(dir, 'cache');
  const module = new URL('../../src/lab/guest-image.js', import.meta.url).href;
  const script = `import(${JSON.stringify(module)}).then((m) => m.ensureTestGuest()).then((g) => console.log(JSON.stringify(g)))`;
  const env = { ...process.env, FERRY_CACHE_DIR: cache } as Record<string, string>;
  const [a, b] = await Promise.all([0, 1].map(() => run(process.execPath, ['-e', script], { env, timeoutMs: 300_000 })));
  const ga = JSON.parse(a!.stdout) as TestGuest;
  assert.deepEqual(JSON.parse(b!.stdout), ga);
  assert.ok(ga.kernel.startsWith(join(cache, 'test-guest') + '/'));
  assert.ok((await stat(ga.kernel)).size > 1_000_000);
  assert.ok((await stat(ga.initrd)).size > 100_000);
  // Only the finished build is left: no temporary .build-* directory.
  assert.deepEqual(await readdir(join(cache, 'test-guest')), [ga.kernel.split('/').at(-2)]);
});
