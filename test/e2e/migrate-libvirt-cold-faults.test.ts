/**
 * A cold move of a shut-off libvirt domain, struck at each of its steps by
 * each fault: the controller, the source's agent or the target's agent
 * killed, the controller's ssh link to lab-b cut (the agent there lives on
 * and reads the end of its input; lab-b is the source or the target as the
 * domain goes back and forth). The copy crosses through the controller's
 * links to both agents, so that link is the one a copy needs. The steps: the disk's copy about to begin; the
 * copy running (at --bandwidth 4, struck once the target's image has grown
 * by 4 MiB); the domain defined on the target (not started); the domain
 * started there; the commit recorded.
 *
 * Then, whatever was lost: the domain is defined on exactly one host, never
 * both. Before the start, the source keeps it, shut off, and the target
 * holds no definition (what was copied stays, for the next run to continue
 * into). From the start on, the target owns it and runs it, and the source's
 * definition is gone: removed by the run's own settling, or by `ferry
 * recover` after a killed controller; the image it boots from there is
 * sound. The next cell's move, from wherever the domain is, completes or is
 * struck in its turn; after all of them, a move completes, its copy kept to
 * --bandwidth, and the guest writes on the target.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh } from '../../src/lab/lab.js';
import { labNvramPath } from '../../src/lab/vm.js';
import { cutSshLinks, diskPath, ferry, killMoveAgent, startHeldMove, until, useLab, waitForCounter } from './harness.js';
import { cleanDomain, domainQemus, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

type Fault = 'controller' | 'source-agent' | 'target-agent' | 'link' | 'target-qemu';
const FAULTS: Fault[] = ['controller', 'source-agent', 'target-agent', 'link'];

interface Step {
  /** The journal line the controller holds at. */
  hold: string;
  /** The instant struck, when it is later than the hold: found in what the target holds, never by waiting a time. */
  instant?: (target: AgentClient) => Promise<void>;
  /** Who owns the domain once `fault` struck there; `linked` is the side whose link a 'link' fault cuts. */
  owner: (fault: Fault, linked: 'source' | 'target') => Array<'source' | 'target'>;
  /** Faults struck here besides FAULTS. */
  extra?: Fault[];
}

const MiB = 2 ** 20;

const VM = 'lvc-faults';

/** The target's image has grown by 4 MiB since the hold: the copy runs (at --bandwidth 4 it has some seconds to go). */
async function copyRunning(target: AgentClient): Promise<void> {
  const disk = diskPath(VM);
  const size = async (): Promise<number> =>
    (await target.call('file.stat', { path: disk })).exists ? Number((await target.call('system.run', { file: 'du', args: ['-B1', '--', disk] })).stdout.split(/\s+/)[0]) : 0;
  const base = await size();
  await until('the copy to run', async () => ((await size()) > base + 4 * MiB ? true : undefined), 60_000, 100);
}

const STEPS: Record<string, Step> = {
  // The disk's copy about to begin (into an image made, or one a struck run left), or running: the copy needs both
  // agents and the controller; what crossed stays for the next run.
  copy: { hold: 'copying', owner: () => ['source'] },
  'copy-running': { hold: 'copying', instant: copyRunning, owner: () => ['source'] },
  // Defined on the target, not started: the start needs the controller and the target's agent (a new one for the
  // source's, lost, finishes after the start).
  defined: { hold: 'target-defined', owner: (f, linked) => (f === 'controller' || f === 'target-agent' || (f === 'link' && linked === 'target') ? ['source'] : ['target']) },
  // Started on the target: it owns the domain whatever goes, even its QEMU dying (the domain is then shut off there).
  started: { hold: 'target-started', owner: () => ['target'], extra: ['target-qemu'] },
  committed: { hold: 'committed', owner: () => ['target'], extra: ['target-qemu'] },
};

interface Cell {
  vm: string;
  source: AgentClient;
  target: AgentClient;
  stepName: string;
  step: Step;
  fault: Fault;
  args?: string[];
}

/** A move of `vm` held at the cell's step and struck there by its fault, then `ferry recover`: which side owns the domain now. */
async function strike(cell: Cell): Promise<'source' | 'target'> {
  const { vm, source, target, step, fault } = cell;
  const disk = diskPath(vm);
  const where = `${fault} at ${cell.stepName} (${source.host.name} -> ${target.host.name})`;
  // The domain moves shut off: a run that started it somewhere left it running there.
  if ((await domainState(source.host.name, vm)) === 'running') await labVirsh(source.host.name, ['destroy', vm]);
  const args = ['migrate', vm, '--from', source.host.name, '--to', target.host.name, '--json', ...(step.instant ? ['--bandwidth', '4'] : []), ...(cell.args ?? [])];
  const m = startHeldMove(vm, args, step.hold);
  await m.held();
  const id = m.id()!;
  if (step.instant) {
    process.kill(m.child.pid!, 'SIGCONT');
    await step.instant(target);
  }
  if (fault === 'controller') process.kill(m.child.pid!, 'SIGKILL');
  else if (fault === 'target-qemu') {
    const qemu = (await domainQemus(vm)).find((q) => q.host === target.host.name);
    assert.ok(qemu, `${where}: the domain's QEMU runs on the target`);
    process.kill(qemu.pid, 'SIGKILL');
  } else if (fault === 'link') assert.ok(cutSshLinks(m.child.pid!, 'lab-b'), `${where}: the controller holds an ssh link to lab-b`);
  else assert.ok(await killMoveAgent(m.entries(), fault === 'source-agent' ? 'source' : 'target'), `${where}: the journal names the agents`);
  if (fault !== 'controller') process.kill(m.child.pid!, 'SIGCONT');
  const result = await m.done;
  const r = await ferry(['recover', id, '--json']);
  assert.equal(r.code, 0, `${where}: ferry recover: ${r.stdout} ${r.stderr}`);

  const states = { source: await domainState(source.host.name, vm), target: await domainState(target.host.name, vm) };
  const defined = (['source', 'target'] as const).filter((side) => states[side] !== undefined);
  assert.equal(defined.length, 1, `${where}: the domain is defined on exactly one host: ${JSON.stringify(states)}\n${result.stdout}\n${r.stdout}`);
  const side = defined[0]!;
  const expected = step.owner(fault, source === b ? 'source' : 'target');
  assert.ok(expected.includes(side), `${where}: the ${side} owns the domain, expected ${expected.join(' or ')}: ${result.stdout}`);
  // A domain whose QEMU was killed on the target is shut off there (libvirt saw it crash), still defined.
  assert.equal(states[side], side === 'target' && fault !== 'target-qemu' ? 'running' : 'shut off', `${where}: on the ${side} it is ${states[side]}`);
  if (fault !== 'controller') {
    const report = JSON.parse(result.stdout) as { status: string; warnings?: string[] };
    assert.equal(report.status === 'completed', side === 'target', `${where}: ${result.stdout}`);
    // Moved and started, then dead: the move is done, and the report says the VM does not run.
    if (fault === 'target-qemu')
      assert.ok(
        report.warnings?.some((w) => w.includes('is shut off on') && w.includes('not running')),
        `${where}: the report warns: ${result.stdout}`,
      );
  }
  if (side === 'target') {
    // The guest booted there and writes: its image is checked for soundness (ferry verified the copy).
    if (states.target === 'running') await labVirsh(target.host.name, ['destroy', vm]);
    const check = await target.call('system.run', { file: 'qemu-img', args: ['check', '-q', disk] });
    assert.equal(check.exitCode, 0, `${where}: qemu-img check of the disk on ${target.host.name}: ${check.stdout} ${check.stderr}`);
    // The older copy's disk stays where the domain left (it is the user's): cleared for the move back.
    await source.call('file.remove', { path: disk });
  }
  return side;
}

const matrixLine = (stepName: string, fault: Fault, side: 'source' | 'target'): string => `  ${stepName.padEnd(20)} ${fault.padEnd(13)} ${side === 'source' ? 'source keeps it' : 'target owns it'}`;

test('libvirt cold move: struck at every step by each fault, the domain ends defined on exactly one host, running there once it was started on the target, with its disk whole', async () => {
  const vm = VM;
  const disk = diskPath(vm);
  await cleanDomain([a, b], vm, 1);
  // 24 MiB of data past what the guest's records fill: at --bandwidth 4 a copy lasts long enough to be struck while it runs.
  const made = await a.call('system.run', {
    file: 'sh',
    args: ['-c', `head -c ${24 * MiB} /dev/urandom > ${disk}.data && qemu-img create -q -f qcow2 ${disk} 64M && qemu-io -f qcow2 -c 'write -q -s ${disk}.data 32M 24M' ${disk}; rm -f ${disk}.data`],
  });
  assert.equal(made.exitCode, 0, made.stderr);
  await startDomain(a, vm, ['--disk', disk, '--rate', '20']);
  await labVirsh('lab-a', ['destroy', vm]);
  let on = a;
  const matrix: string[] = [];
  try {
    for (const [stepName, step] of Object.entries(STEPS)) {
      for (const fault of [...FAULTS, ...(step.extra ?? [])]) {
        const source = on;
        const side = await strike({ vm, source, target: source === a ? b : a, stepName, step, fault });
        on = side === 'source' ? source : source === a ? b : a;
        matrix.push(matrixLine(stepName, fault, side));
      }
    }
    // After all of it, a move without a fault completes, and the domain boots there.
    const to = on === a ? b : a;
    if ((await domainState(on.host.name, vm)) === 'running') await labVirsh(on.host.name, ['destroy', vm]);
    const done = JSON.parse((await ferry(['migrate', vm, '--from', on.host.name, '--to', to.host.name, '--json', '--bandwidth', '4'])).stdout) as { status: string; journal: string };
    assert.equal(done.status, 'completed', JSON.stringify(done));
    // A whole copy (the disk there was cleared) of more than 24 MiB, at 4 MiB/s: --bandwidth holds for a cold copy.
    const copied = readFileSync(done.journal, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { step: string; bytes_sent?: number; seconds?: number })
      .find((e) => e.step === 'copied');
    assert.ok(copied && copied.bytes_sent! > 24 * MiB && copied.seconds! >= (copied.bytes_sent! / (4 * MiB)) * 0.9, `the copy kept to --bandwidth 4: ${JSON.stringify(copied)}`);
    assert.equal(await domainState(to.host.name, vm), 'running');
    await waitForCounter(to, vm, 3);
    await cleanDomain([a, b], vm, 1);
  } finally {
    process.stdout.write(['libvirt cold fault matrix (step x fault -> outcome):', ...matrix].join('\n') + '\n');
  }
});

/** The steps of a cold move that concern a domain's own files: its UEFI variable store and TPM state crossing, and the source's removed after the commit (--delete-source). */
const FILE_STEPS: Record<string, Step & { args?: string[] }> = {
  // The files cross after the disks, the domain still defined on the source only.
  'vm-file-copying': { hold: 'vm-file-copying', owner: () => ['source'] },
  // Past the commit: the target runs the domain; the source's files are removed, or kept whole if the fault came first.
  'source-file-deleting': { hold: 'source-file-deleting', owner: () => ['target'], args: ['--delete-source'] },
};

test("libvirt cold move of a UEFI domain with an emulated TPM: struck as its own files cross and as the source's are removed, one host owns the domain, and its variables and TPM state are whole there", async () => {
  const vm = 'lvc-files';
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--uefi', '--tpm', '--rate', '20']);
  await labVirsh('lab-a', ['destroy', vm]);
  const uuid = (await labVirsh('lab-a', ['domuuid', vm])).trim();
  const nvram = labNvramPath(vm);
  const tpmDir = `/var/lib/libvirt/swtpm/${uuid}`;
  const tpmState = `${tpmDir}/tpm2/tpm2-00.permall`;
  const sha = async (h: AgentClient, path: string): Promise<string | undefined> => ((await h.call('file.stat', { path })).exists ? (await h.call('file.sha256', { path })).sha256 : undefined);
  const matrix: string[] = [];
  let on = a;
  try {
    for (const [stepName, step] of Object.entries(FILE_STEPS)) {
      for (const fault of FAULTS) {
        const source = on;
        const target = source === a ? b : a;
        const where = `${fault} at ${stepName} (${source.host.name} -> ${target.host.name})`;
        if ((await domainState(source.host.name, vm)) === 'running') await labVirsh(source.host.name, ['destroy', vm]);
        // The domain's files as they are before this move; a domain started on the target since has changed them.
        const before = { nvram: await sha(source, nvram), tpm: await sha(source, tpmState) };
        assert.ok(before.nvram && before.tpm, `${where}: the source holds the domain's store and TPM state`);
        const side = await strike({ vm, source, target, stepName, step, fault, args: step.args });
        matrix.push(matrixLine(stepName, fault, side));
        const owner = side === 'source' ? source : target;
        if (side === 'source') {
          assert.deepEqual({ nvram: await sha(source, nvram), tpm: await sha(source, tpmState) }, before, `${where}: the source's files are as they were`);
          continue;
        }
        // The target started the domain from its files (it may have written to them since).
        assert.ok((await owner.call('file.stat', { path: nvram })).exists && (await owner.call('file.stat', { path: tpmState })).exists, `${where}: the target holds the store and the TPM state`);
        // The source's copies are removed (--delete-source) or, struck first, kept whole: cleared for the move back.
        const left = { nvram: await sha(source, nvram), tpm: await sha(source, tpmState) };
        for (const [what, digest] of Object.entries(left)) if (digest) assert.equal(digest, before[what as 'nvram' | 'tpm'], `${where}: the source's ${what} is kept whole or removed`);
        await source.call('file.remove', { path: nvram });
        await source.call('system.run', { file: 'rm', args: ['-rf', tpmDir] });
        on = owner;
      }
    }
    // The domain boots where it is now, on its own variables and TPM.
    if ((await domainState(on.host.name, vm)) !== 'running') await labVirsh(on.host.name, ['start', vm]);
    await waitForCounter(on, vm, 3, 180_000);
    assert.match(await labVirsh(on.host.name, ['dumpxml', vm]), /<backend type='emulator' version='2.0'/);
  } finally {
    process.stdout.write([`libvirt cold fault matrix, ${vm} (step x fault -> outcome):`, ...matrix].join('\n') + '\n');
    await cleanDomain([a, b], vm, 1);
    for (const h of [a, b]) {
      await h.call('file.remove', { path: nvram });
      await h.call('system.run', { file: 'rm', args: ['-rf', tpmDir] });
    }
  }
});
