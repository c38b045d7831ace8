/**
 * A cold move of a shut-off libvirt domain, struck at each of its steps by
 * each fault: the controller, the source's agent or the target's agent
 * killed, the link between the hosts cut (every connection to the target
 * but the controller's ssh). The steps: the disk's copy begun (its image
 * made on the target), the domain defined on the target (not started), the
 * domain started there, the commit recorded.
 *
 * Then, whatever was lost: the domain is defined on exactly one host, never
 * both. Before the start, the source keeps it, shut off, and the target
 * holds no definition (what was copied stays, for the next run to continue
 * into). From the start on, the target owns it and runs it, and the source's
 * definition is gone: removed by the run's own settling, or by `ferry
 * recover` after a killed controller; the image it boots from there is
 * sound. The next cell's move, from wherever the domain is, completes or is
 * struck in its turn; after all of them, a move completes and the guest
 * writes on the target.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh } from '../../src/lab/lab.js';
import { cutLinkTo, diskPath, ferry, killMoveAgent, startHeldMove, useLab, waitForCounter } from './harness.js';
import { cleanDomain, domainState, startDomain } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

type Fault = 'controller' | 'source-agent' | 'target-agent' | 'link';
const FAULTS: Fault[] = ['controller', 'source-agent', 'target-agent', 'link'];

/** Each step, the journal line the controller holds at, and who owns the domain once a fault struck there. */
const STEPS: Record<string, { hold: string; owner: (fault: Fault) => Array<'source' | 'target'> }> = {
  // The disk's copy about to begin (into an image made, or one a struck run left): a lost agent ends the move; a cut link has nothing to cut yet.
  copy: { hold: 'copying', owner: (f) => (f === 'link' ? ['target'] : ['source']) },
  // Defined on the target, not started: the start needs the controller and the target's agent.
  defined: { hold: 'target-defined', owner: (f) => (f === 'controller' || f === 'target-agent' ? ['source'] : ['target']) },
  // Started on the target: it owns the domain whatever goes.
  started: { hold: 'target-started', owner: () => ['target'] },
  committed: { hold: 'committed', owner: () => ['target'] },
};

test('libvirt cold move: struck at every step by each fault, the domain ends defined on exactly one host, running there once it was started on the target, with its disk whole', async () => {
  const vm = 'lvc-faults';
  const disk = diskPath(vm);
  await cleanDomain([a, b], vm, 1);
  await startDomain(a, vm, ['--disk', '32M', '--rate', '20']);
  await labVirsh('lab-a', ['destroy', vm]);
  let on = a;
  const matrix: string[] = [];
  try {
    for (const [stepName, step] of Object.entries(STEPS)) {
      for (const fault of FAULTS) {
        const source = on;
        const target = source === a ? b : a;
        const where = `${fault} at ${stepName} (${source.host.name} -> ${target.host.name})`;
        // The domain moves shut off: a run that started it somewhere left it running there.
        if ((await domainState(source.host.name, vm)) === 'running') await labVirsh(source.host.name, ['destroy', vm]);
        const m = startHeldMove(vm, ['migrate', vm, '--from', source.host.name, '--to', target.host.name, '--json'], step.hold);
        await m.held();
        const id = m.id()!;
        if (fault === 'controller') process.kill(m.child.pid!, 'SIGKILL');
        else if (fault === 'link') await cutLinkTo(target.host.address);
        else assert.ok(await killMoveAgent(m.entries(), fault === 'source-agent' ? 'source' : 'target'), `${where}: the journal names the agents`);
        if (fault !== 'controller') process.kill(m.child.pid!, 'SIGCONT');
        const result = await m.done;
        const r = await ferry(['recover', id, '--json']);
        assert.equal(r.code, 0, `${where}: ferry recover: ${r.stdout} ${r.stderr}`);

        const states = { source: await domainState(source.host.name, vm), target: await domainState(target.host.name, vm) };
        const defined = (['source', 'target'] as const).filter((side) => states[side] !== undefined);
        assert.equal(defined.length, 1, `${where}: the domain is defined on exactly one host: ${JSON.stringify(states)}\n${result.stdout}\n${r.stdout}`);
        const side = defined[0]!;
        assert.ok(step.owner(fault).includes(side), `${where}: the ${side} owns the domain, expected ${step.owner(fault).join(' or ')}: ${result.stdout}`);
        assert.equal(states[side], side === 'target' ? 'running' : 'shut off', `${where}: on the ${side} it is ${states[side]}`);
        if (fault !== 'controller') {
          const report = JSON.parse(result.stdout) as { status: string };
          assert.equal(report.status === 'completed', side === 'target', `${where}: ${result.stdout}`);
        }
        const owner = side === 'source' ? source : target;
        if (side === 'target') {
          // The guest booted there and writes: its image is checked for soundness (ferry verified the copy).
          await labVirsh(target.host.name, ['destroy', vm]);
          const check = await target.call('system.run', { file: 'qemu-img', args: ['check', '-q', disk] });
          assert.equal(check.exitCode, 0, `${where}: qemu-img check of the disk on ${target.host.name}: ${check.stdout} ${check.stderr}`);
          // The older copy's disk stays where the domain left (it is the user's): cleared for the move back.
          await source.call('file.remove', { path: disk });
        }
        on = owner;
        matrix.push(`  ${stepName.padEnd(10)} ${fault.padEnd(13)} ${side === 'source' ? 'source keeps it' : 'target owns it'}`);
      }
    }
    // After all of it, a move without a fault completes, and the domain boots there.
    const to = on === a ? b : a;
    if ((await domainState(on.host.name, vm)) === 'running') await labVirsh(on.host.name, ['destroy', vm]);
    const done = JSON.parse((await ferry(['migrate', vm, '--from', on.host.name, '--to', to.host.name, '--json'])).stdout) as { status: string };
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(await domainState(to.host.name, vm), 'running');
    await waitForCounter(to, vm, 3);
    await cleanDomain([a, b], vm, 1);
  } finally {
    process.stdout.write(['libvirt cold fault matrix (step x fault -> outcome):', ...matrix].join('\n') + '\n');
  }
});
