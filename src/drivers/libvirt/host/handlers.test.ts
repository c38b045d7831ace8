import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { libvirtHandlers as h } from './handlers.js';

// libvirt's own test driver: a real virsh and connection, no daemon; one running, persistent domain, "test".
const uri = 'test:///default';

test('libvirt.domain describes the domain and gives the XMLs asked for from the same call', async () => {
  const variants = [{}, { inactive: true, migratable: true }];
  const found = await h['libvirt.domain']({ uri, domain: 'test', xmls: variants });
  assert.ok(found);
  assert.equal(found.state, 'running');
  assert.equal(found.persistent, true);
  assert.equal(found.description.disks[0]?.path, '/guest/diskimage1');
  const alone = await Promise.all(variants.map((v) => h['libvirt.dumpxml']({ uri, domain: 'test', ...v })));
  assert.deepEqual(
    found.xmls,
    alone.map((a) => a.xml),
  );
  assert.equal((await h['libvirt.domain']({ uri, domain: 'test' }))?.xmls, undefined);
});

test('libvirt.domain is undefined for a domain that is not there', async () => {
  assert.equal(await h['libvirt.domain']({ uri, domain: 'nosuch', xmls: [{ migratable: true }] }), undefined);
});

test('libvirt.domains lists every domain from two virsh calls', async () => {
  const all = await h['libvirt.domains']({ uri });
  assert.deepEqual(
    all.map((d) => [d.name, d.state, d.persistent]),
    [['test', 'running', true]],
  );
});

test('libvirt.state leaves the job statistics out where libvirt has none to give, and says so of a missing domain', async () => {
  // The test driver has no job statistics at all (virDomainGetJobStats unsupported): the state still comes.
  assert.deepEqual(await h['libvirt.state']({ uri, domain: 'test', completedJob: true }), { state: 'running' });
  assert.equal(await h['libvirt.state']({ uri, domain: 'nosuch', completedJob: true }), undefined);
  await assert.rejects(h['libvirt.state']({ uri: 'test:///nonexistent/path.xml', domain: 'test' }), /Cannot reach libvirt|failed/);
});

test('libvirt.undefine keeps the variable store and the TPM state, and on a virsh older than --keep-tpm keeps what it can', async () => {
  // A virsh of before libvirt 8.9, which knows no --keep-tpm: it records what it was asked and refuses that option as such a virsh does.
  const dir = await mkdtemp(join(tmpdir(), 'ferry-old-virsh-'));
  const calls = join(dir, 'calls');
  await writeFile(join(dir, 'virsh'), `#!/bin/sh\necho "$*" >> ${calls}\ncase "$*" in *--keep-tpm*) echo "error: command 'undefine' doesn't support option --keep-tpm" >&2; exit 1;; esac\n`, {
    mode: 0o755,
  });
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  try {
    await h['libvirt.undefine']({ uri, domain: 'web1' });
    assert.deepEqual((await readFile(calls, 'utf8')).trim().split('\n'), [`-c ${uri} undefine --keep-nvram --keep-tpm --domain web1`, `-c ${uri} undefine --keep-nvram --domain web1`]);
  } finally {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  }
  // The real one takes both, and a domain it does not have is an error as before.
  await assert.rejects(h['libvirt.undefine']({ uri, domain: 'nosuch' }), /nosuch/);
});
