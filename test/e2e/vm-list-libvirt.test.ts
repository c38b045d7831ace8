/**
 * `ferry vm list` on a lab host with libvirt domains, running and shut off,
 * beside a QEMU process started by hand: what each is, driven by which
 * driver, and its disks as they are.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { labVirsh } from '../../src/lab/lab.js';
import { stopLabVm } from '../../src/lab/vm.js';
import { diskPath, ferry, useLab } from './harness.js';
import { cleanDomain } from './libvirt-domains.js';

let a: AgentClient;
useLab((hosts) => ({ a } = hosts));

interface Listed {
  name: string;
  driver: string;
  state: string;
  memory_bytes: number;
  cpu?: string;
  networks: string[];
  disks: Array<{ device: string; path: string; format: string; kind?: string; virtual_size: number; cache: string; backing_chain: Array<{ path: string; format: string }> }>;
}

test('vm list shows libvirt domains, running and shut off, beside a QEMU process, each with its driver, state, CPU, networks and disks', async () => {
  const [running, off, plain] = ['lvl-run', 'lvl-off', 'qvl-plain'];
  const base = '/var/lib/ferry/images/lvl-run-base.raw';
  for (const name of [running, off]) await cleanDomain([a], name, 1);
  await stopLabVm(a, plain).catch(() => undefined);
  await a.call('file.remove', { path: diskPath(plain) });
  try {
    await a.call('image.create', { path: base, format: 'raw', sizeBytes: 32 * 1024 * 1024 });
    await a.call('image.create', { path: diskPath(running), format: 'qcow2', sizeBytes: 32 * 1024 * 1024, backingFile: base, backingFormat: 'raw' });
    for (const [name, extra] of [
      [running, ['--libvirt', '--disk', diskPath(running)]],
      [off, ['--libvirt', '--disk', '48M', '--cache', 'writeback', '--memory', '128']],
      [plain, []],
    ] as const) {
      const r = await ferry(['lab', 'vm', 'start', name, '--host', 'lab-a', '--no-wait', ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
    await labVirsh('lab-a', ['destroy', off]);
    await labVirsh('lab-a', ['attach-interface', off, 'bridge', 'ferrybr-list', '--config']);

    const r = await ferry(['vm', 'list', 'lab-a', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const listed = new Map((JSON.parse(r.stdout) as Listed[]).map((v) => [v.name, v]));
    const run = listed.get(running);
    assert.equal(run?.driver, 'libvirt');
    assert.equal(run.state, 'running');
    assert.equal(run.memory_bytes, 256 * 2 ** 20);
    assert.equal(run.cpu, 'qemu64');
    assert.deepEqual(
      run.disks.map((d) => [d.device, d.path, d.format, d.kind, d.virtual_size, d.cache, d.backing_chain.map((b) => [b.path, b.format])]),
      [['vda', diskPath(running), 'qcow2', 'file', 32 * 2 ** 20, 'none', [[base, 'raw']]]],
    );
    const stopped = listed.get(off);
    assert.equal(stopped?.driver, 'libvirt');
    assert.equal(stopped.state, 'shut off');
    assert.equal(stopped.memory_bytes, 128 * 2 ** 20);
    assert.deepEqual(stopped.networks, ['bridge:ferrybr-list']);
    assert.deepEqual(
      stopped.disks.map((d) => [d.path, d.virtual_size, d.cache]),
      [[diskPath(off), 48 * 2 ** 20, 'writeback']],
    );
    assert.equal(listed.get(plain)?.driver, 'qemu');
    assert.equal(listed.get(plain)?.state, 'running');

    // The table a user reads says the same.
    const table = (await ferry(['vm', 'list', 'lab-a'])).stdout;
    assert.match(table, new RegExp(`${off}\\s+libvirt\\s+-\\s+shut off\\s+128\\.0 MiB\\s+qemu64\\s+bridge:ferrybr-list`));
    assert.match(table, new RegExp(`${plain}\\s+qemu\\s+\\d+\\s+running`));
  } finally {
    for (const name of [running, off]) await cleanDomain([a], name, 1);
    await stopLabVm(a, plain).catch(() => undefined);
    for (const path of [base, diskPath(plain)]) await a.call('file.remove', { path });
  }
});
