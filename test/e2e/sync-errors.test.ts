/**
 * ferry sync refuses bad input with a clear error and a hint, and writes
 * nothing: missing source, destination too small, destination mounted or
 * open in a VM, unknown host, a host whose agent does not start, source
 * equal to destination, --create-lv with a missing volume group. A source
 * in a running VM is copied with a crash-consistency warning.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { ferry, makeImage, makeLab, sameContent, sh, type Lab } from './sync-helpers.js';

let lab: Lab;
let src: string;
before(async () => {
  lab = await makeLab('sync-errors');
  src = `${lab.dir}/src.img`;
  await makeImage(src, 32, [[0, 8]]);
});
after(async () => {
  await lab.cleanup();
});

async function digest(path: string): Promise<string> {
  return createHash('sha256')
    .update(await fs.readFile(path))
    .digest('hex');
}

function assertRefused(r: { code: number | null; json: Record<string, unknown> }, code: string): void {
  assert.equal(r.code, 1);
  assert.equal(r.json.status, 'error');
  assert.equal(r.json.code, code, JSON.stringify(r.json));
  assert.ok(typeof r.json.hint === 'string' && (r.json.hint as string).length > 10, 'no hint');
}

test('a missing source is refused and nothing is created', async () => {
  const r = await ferry(['sync', '--json', `ha:${lab.dir}/nope.img`, `hb:${lab.dir}/out.img`], lab.env);
  assertRefused(r, 'NOT_FOUND');
  assert.match(r.json.message as string, /nope\.img/);
  await assert.rejects(fs.stat(`${lab.dir}/out.img`));
});

test('a destination smaller than the source is refused and left alone', async () => {
  const dst = `${lab.dir}/small.img`;
  await makeImage(dst, 16, [[0, 2]]);
  const before = await digest(dst);
  const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
  assertRefused(r, 'TARGET_TOO_SMALL');
  assert.equal(await digest(dst), before);
});

test('an unknown host is refused with the known ones in the hint', async () => {
  const r = await ferry(['sync', '--json', `ha:${src}`, `nohost:${lab.dir}/x.img`], lab.env);
  assertRefused(r, 'UNKNOWN_HOST');
  assert.match(r.json.hint as string, /ha, hb/);
});

test('a host whose agent does not start is reported unreachable, either side, and nothing is written', async () => {
  const hosts = `${lab.dir}/hosts-dead.yaml`;
  await fs.writeFile(hosts, 'hosts:\n  ha: { transport: local, address: 127.0.0.12 }\n  dead: { transport: local, address: 127.0.0.13, agent: [/bin/false] }\n');
  const env = { ...lab.env, FERRY_HOSTS: hosts };
  for (const [from, to] of [
    [`ha:${src}`, `dead:${lab.dir}/dead-out.img`],
    [`dead:${src}`, `ha:${lab.dir}/dead-out.img`],
  ]) {
    const r = await ferry(['sync', '--json', from!, to!], env);
    assertRefused(r, 'UNREACHABLE');
    assert.match(r.json.message as string, /"dead"/);
    // One clear error: no stack trace of a message still queued to the agent that was up.
    assert.doesNotMatch(r.stderr, /\bat \S+ \(|ERR_STREAM/, r.stderr);
    await assert.rejects(fs.stat(`${lab.dir}/dead-out.img`));
  }
});

test('SRC equal to DST is refused, also under two host names for one machine', async () => {
  const before = await digest(src);
  assertRefused(await ferry(['sync', '--json', `ha:${src}`, `ha:${src}`], lab.env), 'USAGE');
  assertRefused(await ferry(['sync', '--json', `ha:${src}`, `hb:${src}`], lab.env), 'USAGE');
  assertRefused(await ferry(['sync', '--json', src, src], lab.env), 'USAGE');
  assert.equal(await digest(src), before);
});

test('a mounted destination (loop device) is refused unless --force', async () => {
  const dst = `${lab.dir}/fs.img`;
  const mnt = `${lab.dir}/mnt`;
  await makeImage(dst, 32, []);
  assert.equal((await sh('mkfs.ext4', ['-q', '-F', dst])).code, 0);
  await fs.mkdir(mnt);
  const loop = (await sh('losetup', ['-f', '--show', dst])).out.trim();
  assert.match(loop, /^\/dev\/loop\d+$/);
  try {
    // Read-only without journal replay: the mount itself writes nothing, so any change would be ferry's.
    assert.equal((await sh('mount', ['-o', 'ro,noload', loop, mnt])).code, 0);
    try {
      const before = await digest(dst);
      const r = await ferry(['sync', '--json', `ha:${src}`, `hb:${dst}`], lab.env);
      assertRefused(r, 'IN_USE');
      assert.match(r.json.message as string, /mounted at .*mnt/);
      assert.equal(await digest(dst), before);
    } finally {
      await sh('umount', [mnt]);
    }
  } finally {
    await sh('losetup', ['-d', loop]);
  }
});

test('a destination open in a running VM is refused; a source in one is copied with a warning', async () => {
  const vmDisk = `${lab.dir}/vm.img`;
  await makeImage(vmDisk, 32, [[0, 4]]);
  const qemu = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-S', '-nodefaults', '-display', 'none', '-m', '64', '-drive', `file=${vmDisk},format=raw,if=virtio`], {
    stdio: 'ignore',
  });
  try {
    for (let i = 0; i < 100; i++) {
      const fds = await fs.readdir(`/proc/${qemu.pid}/fd`).catch(() => [] as string[]);
      const targets = await Promise.all(fds.map((f) => fs.readlink(`/proc/${qemu.pid}/fd/${f}`).catch(() => '')));
      if (targets.includes(vmDisk)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await digest(vmDisk);
    const into = await ferry(['sync', '--json', `ha:${src}`, `hb:${vmDisk}`], lab.env);
    assertRefused(into, 'IN_USE');
    assert.match(into.json.message as string, /qemu-system/);
    assert.equal(await digest(vmDisk), before);

    const from = await ferry(['sync', '--json', `ha:${vmDisk}`, `hb:${lab.dir}/preseed.img`], lab.env);
    assert.equal(from.code, 0, from.stderr);
    assert.match(from.stderr, /crash-consistent/);
    assert.ok((from.json.warnings as string[]).some((w) => /crash-consistent/.test(w)));
    assert.ok(await sameContent(vmDisk, `${lab.dir}/preseed.img`)); // the paused VM did not write
  } finally {
    qemu.kill('SIGKILL');
  }
});

test('--create-lv names a volume group that does not exist, and a destination outside the one named', async () => {
  const missing = await ferry(['sync', '--json', '--create-lv', 'vgferrynone', `ha:${src}`, 'hb:/dev/vgferrynone/copy'], lab.env);
  assertRefused(missing, 'NOT_FOUND');
  assert.match(missing.json.message as string, /volume group "vgferrynone" not found/);
  const outside = await ferry(['sync', '--json', '--create-lv', 'vgferrynone', `ha:${src}`, `hb:${lab.dir}/not-an-lv.img`], lab.env);
  assert.equal(outside.json.code, 'USAGE', JSON.stringify(outside.json));
  await assert.rejects(fs.stat(`${lab.dir}/not-an-lv.img`));
});
