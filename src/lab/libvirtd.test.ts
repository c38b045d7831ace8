import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labLibvirtdConf, labQemuConf, writeLabLibvirtConfig } from './libvirtd.js';

test("a lab host's libvirtd listens on plain TCP on its own address only, without TLS or authentication", () => {
  const conf = labLibvirtdConf('127.0.1.2', '5b0c1b3e-2f4a-4d61-9a7e-1f2d3c4b5a69');
  for (const line of ['listen_tcp = 1', 'listen_tls = 0', 'listen_addr = "127.0.1.2"', 'auth_tcp = "none"', 'host_uuid = "5b0c1b3e-2f4a-4d61-9a7e-1f2d3c4b5a69"'])
    assert.ok(conf.split('\n').includes(line), line);
});

test("a lab host's QEMU runs as root, unconfined, out of the shared cgroups, migrating on the host's address", () => {
  const conf = labQemuConf('127.0.1.3').split('\n');
  for (const line of ['user = "root"', 'group = "root"', 'security_driver = "none"', 'remember_owner = 0', 'cgroup_controllers = [ ]', 'migration_address = "127.0.1.3"'])
    assert.ok(conf.includes(line), line);
});

test('each lab host gets a distinct, valid host UUID', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-libvirtd-test-'));
  try {
    const uuids = [await writeLabLibvirtConfig(join(dir, 'a'), '127.0.1.2'), await writeLabLibvirtConfig(join(dir, 'b'), '127.0.1.3')];
    assert.notEqual(uuids[0], uuids[1]);
    for (const uuid of uuids) assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(await readFile(join(dir, 'a', 'libvirtd.conf'), 'utf8'), new RegExp(`host_uuid = "${uuids[0]}"`));
    assert.match(await readFile(join(dir, 'b', 'qemu.conf'), 'utf8'), /migration_address = "127.0.1.3"/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
