/**
 * A bandwidth cap is spent on data, not zeros: a 1 GiB disk holding about
 * 16 MiB migrates at --bandwidth 20 with a mirror of a few seconds, the
 * target as sparse as the source, every record intact. qcow2 and raw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { cleanVm, counter, ferry, killVm, labVmPaths, startGuest, useLab, waitForCounter } from './harness.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const GiB = 1024 ** 3;

async function allocated(agent: AgentClient, path: string): Promise<number> {
  const r = await agent.call('system.run', { file: 'du', args: ['-B1', '--', path] });
  assert.equal(r.exitCode, 0, r.stderr);
  return Number(r.stdout.split(/\s+/)[0]);
}

for (const format of ['qcow2', 'raw'] as const) {
  test(`a 1 GiB ${format} disk holding 16 MiB migrates under --bandwidth 20 with only its data crossing`, async () => {
    const vm = `e2e-sparse-${format}`;
    const disk = `/var/lib/ferry/images/${vm}.${format}`;
    for (const h of [a, b]) {
      await cleanVm(h, vm, 0);
      await h.call('file.remove', { path: disk });
    }
    await a.call('image.create', { path: disk, format, sizeBytes: GiB });
    const fill = await a.call('system.run', { file: 'qemu-io', args: ['-f', format, '-c', 'write -P 0xa5 512M 16M', disk] });
    assert.equal(fill.exitCode, 0, fill.stderr);
    await startGuest(a, { name: vm, disks: [disk], extraAppend: 'ferry.rate=20' });
    try {
      const r = await ferry(['migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--bandwidth', '20', '--json']);
      const report = JSON.parse(r.stdout) as { status: string; phases: Record<string, number>; disk_bytes: number; disk_zero_bytes?: number };
      assert.equal(report.status, 'completed', `${r.stdout} ${r.stderr}`);
      assert.ok(report.phases.mirror < 3000, `the mirror took ${report.phases.mirror} ms for 16 MiB of data at 20 MiB/s`);
      assert.ok(report.disk_bytes < 40 * 1024 * 1024, `disk_bytes says what crossed: ${report.disk_bytes}`);
      assert.ok(report.disk_bytes > 16 * 1024 * 1024, `the data crossed: ${report.disk_bytes}`);
      const [onA, onB] = [await allocated(a, disk), await allocated(b, disk)];
      assert.ok(Math.abs(onB - onA) <= onA * 0.1 + 2 * 1024 * 1024, `target allocates ${onB} bytes, source ${onA}`);
      const n = await counter(b, vm);
      await waitForCounter(b, vm, n + 3);
      const last = await counter(b, vm);
      await killVm(b, vm);
      const check = await b.call('lab.checkRecords', { disks: [disk], serialLogs: [labVmPaths(vm).serialLog], lastReported: last });
      assert.equal(check.missingCount, 0, `missing: ${check.missing.join(',')}`);
      assert.equal(check.corruptReportedCount, 0, JSON.stringify(check.corruptReported));
      const data = await b.call('system.run', { file: 'qemu-io', args: ['-f', format, '-c', 'read -P 0xa5 512M 16M', disk] });
      assert.equal(data.exitCode, 0, data.stderr);
      assert.doesNotMatch(data.stdout, /Pattern verification failed/, 'the 16 MiB of data arrived intact');
    } finally {
      for (const h of [a, b]) {
        await cleanVm(h, vm, 0);
        await h.call('file.remove', { path: disk });
      }
    }
  });
}
