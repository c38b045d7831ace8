/**
 * `ferry guest` on bad input and on other image shapes: each case a clear error with a hint, and the
 * image left byte for byte as it was. Also the qcow2 path (FUSE export),
 * on a small synthetic guest built with mkfs.ext4 -d.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sleep } from '../../src/util/abort.js';
import { run } from '../../src/util/exec.js';
import { runFerry as ferry } from './cli.js';

let work = '';

async function digest(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** A 64 MiB MBR disk whose one ext4 partition holds `files`. */
async function makeDisk(name: string, files: Record<string, string>, uuid?: string): Promise<string> {
  const tree = join(work, `${name}.tree`);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(tree, path)), { recursive: true });
    await writeFile(join(tree, path), text);
  }
  await mkdir(tree, { recursive: true });
  const disk = join(work, `${name}.raw`);
  await run('truncate', ['-s', '64M', disk]);
  await run('sfdisk', ['-q', disk], { input: 'label: dos\nstart=2048, type=83\n' });
  await run('mkfs.ext4', ['-q', '-F', ...(uuid ? ['-U', uuid] : []), '-E', 'offset=1048576', '-d', tree, disk, '60M']);
  return disk;
}

const LINUX_ROOT = {
  '/etc/os-release': 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
  '/etc/fstab': '/dev/xvda1 / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n',
};

before(async () => {
  work = await mkdtemp('/var/tmp/ferry-guest-bad-');
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('an image a running QEMU holds open is refused', async () => {
  const disk = await makeDisk('inuse', LINUX_ROOT);
  const sum = await digest(disk);
  const qemu = spawn('qemu-system-x86_64', ['-accel', 'tcg', '-S', '-display', 'none', '-monitor', 'none', '-nodefaults', '-drive', `file=${disk},format=raw,if=virtio`], { stdio: 'ignore' });
  const exited = new Promise((r) => qemu.once('exit', r));
  try {
    let r = { code: 0, stdout: '', stderr: '' };
    for (let i = 0; i < 20; i++) {
      await sleep(250);
      r = await ferry(['guest', 'fix', disk]);
      if (r.code !== 0) break;
    }
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`Cannot open disk "${disk}": process ${qemu.pid} \\(qemu-system-x86_64`));
    assert.match(r.stderr, /hint: shut the guest down first/);
  } finally {
    qemu.kill('SIGKILL');
    await exited;
  }
  assert.equal(await digest(disk), sum);
});

test('a file that is no disk image is refused as an unknown format', async () => {
  const junk = join(work, 'junk.img');
  await writeFile(junk, Buffer.alloc(1 << 20, 0x5a));
  const r = await ferry(['guest', 'inspect', junk]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot read disk ".*junk.img": no partition table and no filesystem found/);
  assert.match(r.stderr, /hint: /);
});

test('a disk without a Linux root is refused', async () => {
  const disk = await makeDisk('data', { '/data/file': 'x' });
  const sum = await digest(disk);
  const r = await ferry(['guest', 'fix', disk]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot find a Linux root filesystem on ".*data.raw" \(partitions: 1:ext4\)/);
  assert.match(r.stderr, /hint: give the disk that holds the guest's \//);
  assert.equal(await digest(disk), sum);
});

test('a read-only image is refused for fixing but can be inspected', async () => {
  const disk = await makeDisk('ro', LINUX_ROOT);
  const sum = await digest(disk);
  await chmod(disk, 0o444);
  const r = await ferry(['guest', 'fix', disk]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot fix disk ".*ro.raw": it is not writable/);
  assert.match(r.stderr, /hint: make the image writable/);
  const i = await ferry(['guest', 'inspect', '--json', disk]);
  assert.equal(i.code, 0, i.stderr);
  assert.deepEqual(
    (JSON.parse(i.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code),
    ['fstab-device-name'],
  );
  assert.equal(await digest(disk), sum);
});

test('a missing image is refused', async () => {
  const r = await ferry(['guest', 'inspect', join(work, 'nope.qcow2')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot open disk ".*nope.qcow2": file not found/);
});

test('a qcow2 guest is inspected and fixed through a FUSE export', async () => {
  const raw = await makeDisk('q', LINUX_ROOT);
  const qcow2 = join(work, 'q.qcow2');
  await run('qemu-img', ['convert', '-O', 'qcow2', raw, qcow2]);
  const before = JSON.parse((await ferry(['guest', 'inspect', '--json', qcow2])).stdout) as { format: string; problems: unknown[]; filesystems: { uuid: string }[] };
  assert.equal(before.format, 'qcow2');
  assert.equal(before.problems.length, 1);
  const fix = await ferry(['guest', 'fix', qcow2]);
  assert.equal(fix.code, 0, fix.stderr);
  assert.match(fix.stdout, new RegExp(`\\+UUID=${before.filesystems[0]!.uuid} / ext4`));
  const afterFix = JSON.parse((await ferry(['guest', 'inspect', '--json', qcow2])).stdout) as { problems: unknown[]; fstab: { spec: string }[] };
  assert.deepEqual(afterFix.problems, []);
  assert.equal(afterFix.fstab[0]!.spec, `UUID=${before.filesystems[0]!.uuid}`);
  // No loop device or FUSE export is left behind.
  assert.doesNotMatch((await run('losetup', ['-a'])).stdout, /q\.qcow2|ferry-guest-/);
});

test('a filesystem whose UUID changed in the move gets its old UUID back, or references follow the new one', async () => {
  const OLD = '0e0e0e0e-1111-4222-8333-444444444444';
  const NEW = '0f0f0f0f-5555-4666-8777-888888888888';
  const files = { ...LINUX_ROOT, '/etc/fstab': `UUID=${OLD} / ext4 defaults 0 1\n` };
  const source = await makeDisk('uuid-source', files, OLD);
  const moved = await makeDisk('uuid-moved', files, NEW);
  const seen = JSON.parse((await ferry(['guest', 'inspect', '--json', moved])).stdout) as { problems: { code: string }[] };
  assert.deepEqual(
    seen.problems.map((p) => p.code),
    ['fstab-unknown-uuid'],
  );

  const restore = await ferry(['guest', 'fix', '--restore-uuids', source, moved]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(restore.stdout, new RegExp(`tune2fs -f -U ${OLD}`));
  const restored = JSON.parse((await ferry(['guest', 'inspect', '--json', moved])).stdout) as { problems: unknown[]; filesystems: { uuid: string }[] };
  assert.equal(restored.filesystems[0]!.uuid, OLD);
  assert.deepEqual(restored.problems, []);

  const moved2 = await makeDisk('uuid-moved2', files, NEW);
  const rewrite = await ferry(['guest', 'fix', '--uuid-map', `${OLD}=${NEW}`, '--uuid-mode', 'rewrite', moved2]);
  assert.equal(rewrite.code, 0, rewrite.stderr);
  const rewritten = JSON.parse((await ferry(['guest', 'inspect', '--json', moved2])).stdout) as { problems: unknown[]; fstab: { spec: string }[]; filesystems: { uuid: string }[] };
  assert.equal(rewritten.filesystems[0]!.uuid, NEW);
  assert.equal(rewritten.fstab[0]!.spec, `UUID=${NEW}`);
  assert.deepEqual(rewritten.problems, []);
});

test('HOST:PATH inspects the image on that host through its agent', async () => {
  const disk = await makeDisk('remote', LINUX_ROOT);
  const hosts = join(work, 'hosts.yaml');
  await writeFile(hosts, 'hosts:\n  far:\n    transport: local\n    address: 127.0.0.12\n');
  const r = await ferry(['--hosts', hosts, 'guest', 'inspect', '--json', `far:${disk}`]);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { image: string; problems: { code: string }[] };
  assert.equal(report.image, disk);
  assert.deepEqual(
    report.problems.map((p) => p.code),
    ['fstab-device-name'],
  );
});
