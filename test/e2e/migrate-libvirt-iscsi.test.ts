/**
 * A live move of a libvirt domain whose disk is an iSCSI LUN logged in to
 * with CHAP: a real target (tgtd, on 127.0.0.21, which both lab hosts reach,
 * as shared storage), the password in a libvirt secret that only the source
 * has. Refused without --copy-secrets. With it, the secret is claimed in the
 * journal, then defined on the target before its QEMU logs in; struck at
 * either instant (the controller killed, or the source's agent), the VM
 * keeps running on the source and no secret is left on the target: `ferry
 * recover` or the run's own rollback removes what ferry defined.
 * Then the move completes with no byte of the disk copied, and every record
 * the guest reported is on the LUN.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh, LAB_SHARED_DIR } from '../../src/lab/lab.js';
import { readSerial } from '../../src/lab/vm.js';
import { lastCounter } from '../../src/lab/records.js';
import { run } from '../../src/util/exec.js';
import { ferry, killMoveAgent, startHeldMove, until, useLab, waitForCounter } from './harness.js';
import { cleanDomain, domainState } from './libvirt-domains.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const PORTAL = '127.0.0.21:3260';
const IQN = 'iqn.2026-12.org.ferry:lab-iscsi';
const USER = 'ferry';
const PASSWORD = 'chap-secret-4711';
/** tgtd's management socket number, apart from a system tgtd's (0). */
const CONTROL = '21';
const VM = 'lv-iscsi';
const MiB = 2 ** 20;

let tgtd: ChildProcess | undefined;
let dir: string;
const lun = (): string => `${dir}/lun1.img`;

const tgtadm = (...args: string[]): Promise<{ exitCode: number }> => run('tgtadm', ['-C', CONTROL, '--lld', 'iscsi', ...args]);

before(async () => {
  dir = mkdtempSync('/var/tmp/ferry-iscsi-');
  await run('truncate', ['-s', `${64 * MiB}`, lun()]);
  // A tgtd an earlier run left on this control port would answer for a LUN that is gone.
  await run('pkill', ['-f', `^tgtd -f -C ${CONTROL} `], { allowFailure: true });
  tgtd = spawn('tgtd', ['-f', '-C', CONTROL, '--iscsi', `portal=${PORTAL}`], { stdio: 'ignore' });
  await until('tgtd to answer', async () => ((await tgtadm('--op', 'show', '--mode', 'sys').catch(() => undefined)) ? true : undefined), 20_000, 100);
  await tgtadm('--op', 'new', '--mode', 'target', '--tid', '1', '-T', IQN);
  await tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', lun());
  await tgtadm('--op', 'new', '--mode', 'account', '--user', USER, '--password', PASSWORD);
  await tgtadm('--op', 'bind', '--mode', 'account', '--tid', '1', '--user', USER);
  await tgtadm('--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL');
});

after(() => {
  tgtd?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The UUID of the iSCSI secret whose usage is the target's IQN on `host`, if there is one. */
async function secretOn(host: string): Promise<string | undefined> {
  const list = await labVirsh(host, ['secret-list']);
  return list
    .split('\n')
    .find((l) => l.includes(`iscsi ${IQN}`))
    ?.trim()
    .split(/\s+/)[0];
}

async function clean(): Promise<void> {
  await cleanDomain([a, b], VM, 1);
  for (const host of ['lab-a', 'lab-b']) {
    const uuid = await secretOn(host);
    if (uuid) await labVirsh(host, ['secret-undefine', uuid]);
  }
}

/**
 * A move with --copy-secrets held at `step` and struck there by `strike`;
 * then the VM runs on the source, and no secret is left on the target. At
 * `secret-claimed` the secret is claimed in the journal, not defined yet; by
 * the start of the mirror phase it is defined, libvirt's job not begun.
 */
async function struckAt(step: 'secret-claimed' | 'phase:mirror', strike: (move: ReturnType<typeof startHeldMove>) => Promise<void>, settleWithRecover: boolean): Promise<void> {
  const move = startHeldMove(VM, ['migrate', VM, '--from', 'lab-a', '--to', 'lab-b', '--json', '--copy-secrets'], step);
  await move.held();
  assert.equal(!!(await secretOn('lab-b')), step === 'phase:mirror', `at ${step} the secret is ${step === 'phase:mirror' ? '' : 'not yet '}defined on the target`);
  await strike(move);
  const result = await move.done;
  if (settleWithRecover) {
    const r = await ferry(['recover', move.id()!, '--json']);
    assert.equal(r.code, 0, `${r.stdout} ${r.stderr}`);
  } else {
    const report = JSON.parse(result.stdout) as { status: string; source_running?: boolean };
    assert.notEqual(report.status, 'completed', result.stdout);
    assert.equal(report.source_running, true, result.stdout);
  }
  assert.equal(await secretOn('lab-b'), undefined, `struck at ${step}: no secret is left on the target`);
  assert.equal(await domainState('lab-a', VM), 'running');
  assert.equal(await domainState('lab-b', VM), undefined);
}

test('libvirt live, disk on an iSCSI LUN with CHAP: refused until --copy-secrets; struck as the secret is claimed and once it is defined on the target, the source keeps the VM and no secret is left there; then the VM moves with the secret, its disk not copied, every record on the LUN', async () => {
  await clean();
  const secretFile = `${LAB_SHARED_DIR}/${VM}-secret.xml`;
  await a.call('file.write', { path: secretFile, text: `<secret ephemeral='no' private='no'><usage type='iscsi'><target>${IQN}</target></usage></secret>` });
  const defined = await labVirsh('lab-a', ['secret-define', secretFile]);
  const uuid = /Secret ([0-9a-f-]{36}) created/.exec(defined)?.[1];
  assert.ok(uuid, defined);
  await labVirsh('lab-a', ['secret-set-value', uuid, '--base64', Buffer.from(PASSWORD).toString('base64')]);
  try {
    const started = await ferry(['lab', 'vm', 'start', VM, '--host', 'lab-a', '--libvirt', '--disk', `iscsi://${USER}@${PORTAL}/${IQN}/1`, '--rate', '20']);
    assert.equal(started.code, 0, started.stderr);
    await waitForCounter(a, VM, 5);

    const refused = JSON.parse((await ferry(['migrate', VM, '--from', 'lab-a', '--to', 'lab-b', '--json'])).stdout) as { error?: { code: string; message: string; hint?: string } };
    assert.equal(refused.error?.code, 'NOT_FOUND', JSON.stringify(refused));
    assert.match(refused.error.message, /secret/);
    assert.match(refused.error.hint ?? '', /--copy-secrets/);
    assert.equal(await domainState('lab-a', VM), 'running');

    const killController = async (move: ReturnType<typeof startHeldMove>): Promise<void> => void process.kill(move.child.pid!, 'SIGKILL');
    // The source's agent runs libvirt's job: lost before it, the run rolls back through a new one.
    const killSourceAgent = async (move: ReturnType<typeof startHeldMove>): Promise<void> => {
      assert.ok(await killMoveAgent(move.entries(), 'source'));
      process.kill(move.child.pid!, 'SIGCONT');
    };
    await struckAt('secret-claimed', killController, true);
    await struckAt('phase:mirror', killController, true);
    await struckAt('phase:mirror', killSourceAgent, false);

    const before = lastCounter(await readSerial(a, VM));
    const r = await ferry(['migrate', VM, '--from', 'lab-a', '--to', 'lab-b', '--json', '--copy-secrets']);
    const moved = JSON.parse(r.stdout) as { status: string; disk_bytes: number; disks: Array<{ device: string; target: { shared?: boolean } }> };
    assert.equal(moved.status, 'completed', r.stdout);
    assert.equal(moved.disk_bytes, 0, 'no byte of the shared LUN copied');
    assert.deepEqual(
      moved.disks.map((d) => [d.device, d.target.shared]),
      [['vda', true]],
    );
    assert.equal(await domainState('lab-b', VM), 'running');
    assert.equal(await domainState('lab-a', VM), undefined);
    const onB = await secretOn('lab-b');
    assert.ok(onB, 'the secret is defined on the target');
    assert.equal((await labVirsh('lab-b', ['secret-get-value', onB])).trim(), Buffer.from(PASSWORD).toString('base64'), 'with its value');
    assert.ok(await secretOn('lab-a'), "the source keeps its secret: it is the user's");
    await waitForCounter(b, VM, before + 5);

    const last = lastCounter(await readSerial(b, VM));
    await labVirsh('lab-b', ['destroy', VM]);
    const check = await b.call('lab.checkRecords', { disks: [lun()], serialLogs: [], lastReported: last });
    assert.equal(check.missingCount, 0, `records missing from the LUN: ${check.missing.join(',')}`);
    assert.equal(check.corruptReportedCount, 0);
  } finally {
    await clean();
    await a.call('file.remove', { path: secretFile });
  }
});
