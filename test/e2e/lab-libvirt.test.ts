/**
 * The lab's libvirt side: each lab host runs its own libvirtd, and a libvirt
 * lab VM moves between them with plain `virsh migrate`, the peer that
 * ferry's live migration is measured against.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labDir } from '../../src/hosts/inventory.js';
import { LAB_HOSTS, LAB_SHARED_DIR, labExecArgv, labState, labVirsh } from '../../src/lab/lab.js';
import { labDomainNames, stopLabVm } from '../../src/lab/vm.js';
import { run } from '../../src/util/exec.js';
import { counter, diskPath, ferry, labVmPaths, useLab, waitForCounter } from './harness.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const [addressA, addressB] = LAB_HOSTS.map((h) => h.address);
const tcp = (address: string | undefined): string => `qemu+tcp://${address}/system`;

function hostUuid(capabilities: string): string {
  const uuid = /<host>\s*<uuid>([^<]+)<\/uuid>/.exec(capabilities)?.[1];
  assert.ok(uuid, 'capabilities name the host UUID');
  return uuid;
}

/** Removes a libvirt lab VM and its files from both hosts, so a test starts clean. */
async function cleanDomain(name: string): Promise<void> {
  for (const agent of [a, b]) {
    if ((await labDomainNames(agent.host.name)).includes(name)) await stopLabVm(agent, name);
    for (const path of [diskPath(name), labVmPaths(name).serialLog]) await agent.call('file.remove', { path });
  }
}

test('each lab host runs its own libvirtd on its own address, with its own host UUID', async () => {
  const uuids: string[] = [];
  for (const host of LAB_HOSTS) {
    const version = await run('virsh', ['-c', tcp(host.address), 'version']);
    assert.match(version.stdout, /Running hypervisor: QEMU/);
    const overTcp = hostUuid((await run('virsh', ['-c', tcp(host.address), 'capabilities'])).stdout);
    assert.equal(hostUuid(await labVirsh(host.name, ['capabilities'])), overTcp, `qemu:///system inside ${host.name} is the libvirtd on ${host.address}`);
    uuids.push(overTcp);
  }
  assert.notEqual(uuids[0], uuids[1]);
  assert.doesNotMatch(uuids[0]!, /^([0-9a-f])\1{7}-\1{4}-/, 'a valid UUID, not all one digit');
  const list = await ferry(['lab', 'exec', 'lab-b', '--', 'virsh', 'list', '--all']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /Id\s+Name\s+State/);
});

test('the shared directory holds the same files on both lab hosts', async () => {
  const path = `${LAB_SHARED_DIR}/lab-libvirt-test-marker`;
  await a.call('file.write', { path, text: 'written on lab-a' });
  assert.equal((await b.call('file.read', { path })).text, 'written on lab-a');
  await b.call('file.remove', { path });
  assert.equal((await a.call('file.stat', { path })).exists, false);
});

test('a libvirt lab VM moves from lab-a to lab-b with virsh migrate and goes on writing records', async () => {
  const name = 'lv01';
  await cleanDomain(name);
  try {
    const start = await ferry(['lab', 'vm', 'start', name, '--host', 'lab-a', '--libvirt', '--disk', '64M', '--json']);
    assert.equal(start.code, 0, start.stderr);
    assert.equal((JSON.parse(start.stdout) as { serial: string }).serial, labVmPaths(name).serialLog);
    await waitForCounter(a, name, 5);
    assert.equal((await labVirsh('lab-a', ['domstate', name])).trim(), 'running');
    assert.ok(!(await labDomainNames('lab-b')).includes(name), 'lab-b does not know the domain');

    // As an operator does for --copy-storage-all: the target image first, same path and size.
    const size = (await a.call('image.chain', { path: diskPath(name) }))[0]!.virtualSize;
    const [file, ...args] = await labExecArgv('lab-b', ['qemu-img', 'create', '-q', '-f', 'qcow2', diskPath(name), String(size)]);
    await run(file!, args);
    const before = await counter(a, name);
    await run(
      'virsh',
      [
        '-c',
        tcp(addressA),
        'migrate',
        '--live',
        '--copy-storage-all',
        '--persistent',
        '--undefinesource',
        name,
        tcp(addressB),
        '--migrateuri',
        `tcp://${addressB}`,
        '--disks-uri',
        `tcp://${addressB}`,
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal((await labVirsh('lab-b', ['domstate', name])).trim(), 'running');
    assert.ok(!(await labDomainNames('lab-a')).includes(name), 'the source undefined it');
    await waitForCounter(b, name, before + 5);

    const stop = await ferry(['lab', 'vm', 'stop', name, '--host', 'lab-b']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(await labDomainNames('lab-b'), []);
    const check = await ferry(['lab', 'vm', 'check', name, '--host', 'lab-b', '--json']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.equal((JSON.parse(check.stdout) as { ok: boolean }).ok, true);
  } finally {
    await cleanDomain(name);
  }
});

test('lab down leaves no libvirtd and no mount behind', async () => {
  const state = (await labState())!;
  const pids = state.hosts.flatMap((h) => [h.pid, h.libvirtdPid, h.virtlogdPid]);
  const down = await ferry(['lab', 'down']);
  assert.equal(down.code, 0, down.stderr);
  for (const pid of pids) assert.equal(existsSync(`/proc/${pid}`), false, `process ${pid} is gone`);
  const dir = labDir();
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let mounts: string;
    try {
      mounts = readFileSync(`/proc/${entry}/mountinfo`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // This lab's directory itself or below it; another lab's (ferry-lab2 beside ferry-lab) is not this one's.
    assert.ok(!mounts.split(/\s/).some((field) => field === dir || field.startsWith(`${dir}/`)), `process ${entry} still sees a mount of ${dir}`);
  }
});
