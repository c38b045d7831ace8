/**
 * The libvirt fault matrix: a live move of the test guest as a libvirt
 * domain (writing without pause), struck at each step of the move by each
 * fault: the controller, the source's agent or the target's agent killed,
 * the link between the hosts cut (every connection to the target but the
 * controller's ssh).
 *
 * The domain's disk is a storage pool volume, and it has a CD-ROM image,
 * which libvirt does not migrate: ferry copies it before libvirt's job. A
 * second domain, booted through UEFI, is struck where ferry copies its
 * variable store before the job, and only there: under TCG its guest once
 * stopped for good (idle, no timer firing) after a move in the job's cells,
 * which the matrix would take for a lost VM.
 *
 * The steps: check (the domain described), prepare (the target's images
 * made), the variable store's copy begun, the CD-ROM's copy begun, the target's pool about to be read again
 * (it then knows the volume ferry made), libvirt's migration job running (the source's agent runs `virsh
 * migrate --p2p`; struck once the source's job and the target's incoming
 * QEMU are there), committed (libvirt switched over: the domain runs on the
 * target) and finish (the source's definition gone, the target's
 * persistent). The controller holds itself at the journal step
 * (FERRY_JOURNAL_HOLD), the fault strikes, the controller goes on unless it
 * was the one killed.
 *
 * Then, whatever was lost: the domain runs on exactly one host, never both,
 * and writes on with every record it reported on its disk; the failed run's
 * own settling, or `ferry recover` after a killed controller, leaves the
 * other host nothing: no domain defined, no image ferry made (nor a volume
 * its pool lists), no job, no incoming QEMU; and the next cell's move, from wherever the domain is,
 * completes or is struck in its turn. One domain goes through every cell;
 * after a failure it is left as it was for a look, and removed by the next
 * run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh } from '../../src/lab/lab.js';
import { labNvramPath } from '../../src/lab/vm.js';
import { counter, cutLinkTo, ferry, killMoveAgent, startHeldMove, until, useLab, waitForCounter } from './harness.js';
import { cleanDomain, definePool, domainLogs, domainQemuHosts, domainState, incomingQemu, removePool, startDomain, type TestPool } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const POOL: TestPool = { name: 'ferry-faults', dir: '/var/lib/libvirt/images/ferry-faults' };
const VOLUME = 'lv-faults.qcow2';
const DISK = `${POOL.dir}/${VOLUME}`;
const CDROM = '/var/lib/ferry/images/lv-faults.iso';

type Fault = 'controller' | 'source-agent' | 'target-agent' | 'link';
const FAULTS: Fault[] = ['controller', 'source-agent', 'target-agent', 'link'];

interface Step {
  /** The journal step the controller holds at. */
  hold: string;
  /** The instant struck, when it is later than the hold: found in libvirt's own state, never by waiting a time. */
  instant?: (vm: string, source: AgentClient) => Promise<void>;
  /** Who may own the domain once `fault` struck here (source or target of the move). */
  owner: (fault: Fault) => Array<'source' | 'target'>;
}

/**
 * libvirt's job copies the RAM: the disks are mirrored, the incoming QEMU
 * is up on the target. (Earlier, in the mirror, the job would take the
 * bandwidth given to virsh again when it starts on the RAM.)
 */
async function memoryCopying(vm: string, source: AgentClient): Promise<void> {
  await until('libvirt to copy the RAM', async () => {
    const job = await source.call('libvirt.jobInfo', { domain: vm }).catch(() => undefined);
    return job && job.type !== 'none' && (job.memoryProcessed ?? 0) > 0 && incomingQemu(vm) ? true : undefined;
  });
}

const STEPS: Record<string, Step> = {
  // Nothing exists yet: a lost agent fails the check, a cut link has nothing to cut and the move goes on.
  check: { hold: 'vm', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  // The target's first image exists; libvirt has not begun. The controller needs the target's agent for the next
  // image, the CD-ROM's copy and the pool's refresh; the link only from libvirt's job on.
  prepare: { hold: 'created', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  'nvram-copy': { hold: 'vm-file-copying', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  'readonly-copy': { hold: 'copying', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  'pool-refresh': { hold: 'pool-refresh', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  // libvirt's job runs between the two libvirtds, with or without ferry: a lost controller or target agent does not stop it.
  migrating: {
    hold: 'libvirt-migrate',
    instant: memoryCopying,
    owner: (f) => (f === 'link' || f === 'source-agent' ? ['source'] : ['target']),
  },
  // libvirt switched over: the target owns the domain whatever goes.
  committed: { hold: 'committed', owner: () => ['target'] },
  finish: { hold: 'phase:finish', owner: () => ['target'] },
};

type StepName = keyof typeof STEPS;

interface Domain {
  vm: string;
  /** The host the domain runs on now: the next cell moves it from there. */
  on: AgentClient;
  /** The highest record the guest reported, on either host. */
  reported: number;
}

async function jobType(host: string, vm: string): Promise<string> {
  return /Job type:\s+(\S+)/.exec(await labVirsh(host, ['domjobinfo', vm]))?.[1] ?? 'unknown';
}

/** Strikes `fault` on the move held in `m`. */
async function strike(fault: Fault, m: ReturnType<typeof startHeldMove>, target: AgentClient): Promise<void> {
  switch (fault) {
    case 'controller':
      process.kill(m.child.pid!, 'SIGKILL');
      return;
    case 'source-agent':
    case 'target-agent':
      assert.ok(await killMoveAgent(m.entries(), fault === 'source-agent' ? 'source' : 'target'), 'the journal names the agents');
      return;
    case 'link':
      await cutLinkTo(target.host.address);
  }
}

async function runCell(d: Domain, stepName: StepName, fault: Fault): Promise<string> {
  const step = STEPS[stepName]!;
  const { vm } = d;
  const source = d.on;
  const target = source === a ? b : a;
  const where = `${fault} at ${stepName} (${source.host.name} -> ${target.host.name})`;
  const m = startHeldMove(vm, ['migrate', vm, '--from', source.host.name, '--to', target.host.name, '--json', ...(step.instant ? ['--bandwidth', '4'] : [])], step.hold);
  await m.held();
  const id = m.id()!;
  if (step.instant) {
    // libvirt goes on while the controller is held: the instant is found in its own state.
    process.kill(m.child.pid!, 'SIGCONT');
    await step.instant(vm, source);
  }
  await strike(fault, m, target);
  // At 4 MiB/s the guest dirties its RAM faster than it crosses. Where libvirt's job is to end by itself (no one
  // left to abort it, or a controller that waits for it), the bandwidth is lifted; a lost source agent leaves
  // the job running for the controller's settling to end.
  if (step.instant && (fault === 'controller' || fault === 'target-agent')) await labVirsh(source.host.name, ['migrate-setspeed', vm, '100000']);
  if (fault !== 'controller') process.kill(m.child.pid!, 'SIGCONT');
  const result = await m.done;

  let recovery = 'closed';
  if (fault === 'controller') {
    const history = JSON.parse((await ferry(['history', '--json'])).stdout) as Array<{ id: string; status: string }>;
    assert.equal(history.find((h) => h.id === id)?.status, 'interrupted', `${where}: history marks the move interrupted`);
  } else {
    assert.equal(result.code === 0 || result.code === 1, true, `${where}: ferry ended by itself: ${result.stderr}`);
  }
  // After the run's own settling recover has nothing left to do; after a killed controller it settles.
  const r = await ferry(['recover', id, '--json']);
  assert.equal(r.code, 0, `${where}: ferry recover: ${r.stdout} ${r.stderr}`);
  const recovered = JSON.parse(r.stdout) as Array<{ status: string; runs_on: string[] }>;
  if (fault !== 'controller') assert.deepEqual(recovered, [], `${where}: the run settled itself: ${r.stdout}`);
  if (recovered[0]) {
    recovery = recovered[0].status;
    assert.notEqual(recovery, 'failed', `${where}: ${r.stdout}`);
  }

  // Exactly one host runs the domain; the other holds nothing of it.
  const states = { source: await domainState(source.host.name, vm), target: await domainState(target.host.name, vm) };
  const running = (['source', 'target'] as const).filter((side) => states[side] === 'running');
  assert.equal(running.length, 1, `${where}: the domain runs on exactly one host: ${JSON.stringify(states)}`);
  const side = running[0]!;
  assert.ok(step.owner(fault).includes(side), `${where}: the ${side} owns the domain, expected ${step.owner(fault).join(' or ')}`);
  if (recovered[0]) assert.deepEqual(recovered[0].runs_on, [side === 'source' ? source.host.name : target.host.name], `${where}: recover reports the owner`);
  const owner = side === 'source' ? source : target;
  const other = side === 'source' ? target : source;
  assert.equal(states[side === 'source' ? 'target' : 'source'], undefined, `${where}: no domain defined on ${other.host.name}`);
  assert.deepEqual(await domainQemuHosts(vm), [owner.host.name], `${where}: one QEMU runs the domain, on ${owner.host.name}`);
  assert.equal(await jobType(owner.host.name, vm), 'None', `${where}: no job left on ${owner.host.name}`);
  if (side === 'source') {
    for (const path of [DISK, CDROM, labNvramPath(vm)]) assert.equal((await target.call('file.stat', { path })).exists, false, `${where}: ${path}, made by ferry on ${target.host.name}, is removed`);
    assert.doesNotMatch(await labVirsh(target.host.name, ['vol-list', POOL.name]), new RegExp(VOLUME), `${where}: the pool on ${target.host.name} lists no volume ferry made`);
  }

  if (fault !== 'controller') {
    const report = JSON.parse(result.stdout) as { status: string; source_running?: boolean };
    if (side === 'source') {
      assert.notEqual(report.status, 'completed', `${where}: ${result.stdout}`);
      assert.equal(report.source_running, true, `${where}: the report confirms the source runs: ${result.stdout}`);
    } else {
      assert.equal(report.status, 'completed', `${where}: ${result.stdout}`);
    }
  }

  // It writes on, and every record it reported is on its disk.
  const before = await counter(owner, vm);
  d.reported = Math.max(d.reported, before);
  d.reported = Math.max(d.reported, await waitForCounter(owner, vm, before + 1, 60_000));
  const check = await owner.call('lab.checkRecords', { disks: [DISK], serialLogs: [], lastReported: d.reported, forceShare: true });
  assert.equal(check.missingCount, 0, `${where}: records missing on ${owner.host.name}: ${check.missing.join(',')}`);
  assert.equal(check.corruptReportedCount, 0, `${where}: records corrupt on ${owner.host.name}`);

  // The older copy's disks and variable store stay where the domain left (they are the user's, not ferry's): cleared for the next move back.
  if (side === 'target') {
    await labVirsh(source.host.name, ['vol-delete', '--pool', POOL.name, VOLUME]);
    await source.call('file.remove', { path: CDROM });
    await source.call('file.remove', { path: labNvramPath(vm) });
  }
  d.on = owner;
  const ended = fault === 'controller' ? `recover: ${recovery}` : reportSummary(result.stdout);
  return `${side === 'source' ? 'source keeps it' : 'target owns it'}; ${ended}`;
}

/** The run's report in a few words: its status, and what settled it after a failure or after the commit. */
function reportSummary(stdout: string): string {
  const report = JSON.parse(stdout) as { status: string; failed_phase?: string; error?: { code: string }; warnings?: string[] };
  if (report.error) return `${report.status} in ${report.failed_phase ?? 'setup'} (${report.error.code})`;
  return `${report.status}${report.warnings?.length ? ' (settled after the commit)' : ''}`;
}

/** Moves `vm` (a pool volume and a CD-ROM, started with `extra`) through each of `steps` struck by each fault, then once more without one. */
async function runMatrix(vm: string, steps: StepName[], extra: string[]): Promise<void> {
  const matrix = new Map<string, string>();
  const clean = async (): Promise<void> => {
    await cleanDomain([a, b], vm, 0);
    for (const h of [a, b]) {
      await removePool(h, POOL);
      await h.call('file.remove', { path: CDROM });
    }
  };
  await clean();
  for (const h of [a, b]) await definePool(h.host.name, POOL);
  await labVirsh('lab-a', ['vol-create-as', POOL.name, VOLUME, '32M', '--format', 'qcow2']);
  // 20 records a second: the 32 MiB volume holds 8192, which a guest writing without pause fills before the matrix ends.
  await startDomain(a, vm, ['--disk', `volume:${POOL.name}/${VOLUME}`, '--rate', '20', ...extra]);
  await a.call('system.run', { file: 'sh', args: ['-c', `head -c 4194304 /dev/urandom > ${CDROM}`] });
  await labVirsh('lab-a', ['attach-disk', vm, CDROM, 'sdb', '--type', 'cdrom', '--mode', 'readonly', '--targetbus', 'sata', '--config']);
  // A CD-ROM is no hotplug device here: the domain starts again with it.
  await labVirsh('lab-a', ['destroy', vm]);
  await labVirsh('lab-a', ['start', vm]);
  const d: Domain = { vm, on: a, reported: await waitForCounter(a, vm, (await counter(a, vm)) + 3) };
  try {
    for (const stepName of steps) {
      for (const fault of FAULTS) {
        const t0 = Date.now();
        const outcome = await runCell(d, stepName, fault).catch(async (e: Error) => {
          // A domain that stopped by itself says why in libvirt's QEMU log: kept in the failure, since the lab goes down after the run.
          throw new Error(`${stepName}, ${fault}: ${e.message}\n${await domainLogs([a, b], vm)}`, { cause: e });
        });
        matrix.set(`${stepName.padEnd(13)} ${fault.padEnd(13)}`, `${outcome} (${Date.now() - t0} ms)`);
      }
    }
    // After all of it, a move without a fault completes.
    const from = d.on;
    const to = from === a ? b : a;
    const r = await ferry(['migrate', vm, '--from', from.host.name, '--to', to.host.name, '--json']);
    assert.equal((JSON.parse(r.stdout) as { status: string }).status, 'completed', r.stdout);
    await waitForCounter(to, vm, d.reported + 1);
    await clean();
  } finally {
    process.stdout.write([`libvirt fault matrix, ${vm} (step x fault -> outcome):`, ...[...matrix].map(([k, v]) => `  ${k} ${v}`)].join('\n') + '\n');
  }
}

test('libvirt fault matrix: a live move struck at every step by each fault ends with one owner and nothing left on the other host', async () => {
  await runMatrix(
    'lv-faults',
    (Object.keys(STEPS) as StepName[]).filter((s) => s !== 'nvram-copy'),
    ['--memory', '128'],
  );
});

test("libvirt fault matrix, UEFI: struck by each fault as ferry copies the domain's variable store, the move ends with one owner and no store left on the other host", async () => {
  await runMatrix('lv-faults-uefi', ['nvram-copy'], ['--memory', '192', '--uefi']);
});
