import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep } from '../util/abort.js';
import { run, runningCommandPids } from '../util/exec.js';
import { findDiskUsers, processesHolding } from './usage.js';

/** Waits until process `pid` has `path` open. */
async function untilHolding(pid: number, path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === path) return;
    await sleep(10);
  }
  throw new Error(`process ${pid} never opened ${path}`);
}

test('a process holding the disk is a user; a probe this process is running on it is not', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-usage-'));
  const disk = join(dir, 'disk.img');
  await writeFile(disk, Buffer.alloc(4096));
  const holder = spawn('sh', ['-c', `exec 3<"${disk}"; exec sleep 30`], { stdio: 'ignore' });
  try {
    await untilHolding(holder.pid!, disk);
    // Our own command, like qemu-img info probing the disk during the look.
    const probe = run('sh', ['-c', `exec 3<"${disk}"; exec sleep 1`]);
    const probePid = await (async () => {
      for (let i = 0; i < 200 && runningCommandPids().size === 0; i++) await sleep(5);
      return [...runningCommandPids()][0]!;
    })();
    await untilHolding(probePid, disk);

    const pids = (await processesHolding(disk)).map((h) => h.pid);
    assert.deepEqual(pids, [holder.pid]);
    const users = await findDiskUsers(disk);
    assert.deepEqual(
      users.openers.map((o) => o.command),
      ['sleep'],
    );
    await probe;
    assert.equal(runningCommandPids().has(probePid), false, 'a finished command is forgotten');
  } finally {
    holder.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
