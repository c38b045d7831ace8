/** The lab: two simulated hosts with their own files, processes and addresses. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { labDir } from '../../src/hosts/inventory.js';
import { LAB_HOSTS } from '../../src/lab/lab.js';
import { ferry, lab } from './harness.js';

test('lab hosts see different files at the same path, and only their own VMs', async () => {
  const { a, b, close } = await lab();
  try {
    const path = '/var/lib/ferry/lab-test-marker';
    await a.call('file.write', { path, text: 'on lab-a' });
    await b.call('file.write', { path, text: 'on lab-b' });
    assert.equal((await a.call('file.read', { path })).text, 'on lab-a');
    assert.equal((await b.call('file.read', { path })).text, 'on lab-b');
    assert.notEqual(a.facts.hostId, b.facts.hostId);
    // lab-b is reached through a real sshd: its agent is a child of an ssh session.
    const tree = await b.call('system.run', { file: 'sh', args: ['-c', 'cat /proc/$PPID/comm; cat /proc/$(cut -d" " -f4 /proc/$PPID/stat)/cmdline | tr "\\0" " "'] });
    assert.match(tree.stdout, /sshd/);
    // Each host sees its own processes only: nothing of lab-b's agent on lab-a.
    const psA = await a.call('system.run', { file: 'ps', args: ['-eo', 'args'] });
    assert.doesNotMatch(psA.stdout, /sshd: root/);
    const r = await ferry(['lab', 'exec', 'lab-b', '--', 'cat', path]);
    assert.equal(r.stdout, 'on lab-b');
    await a.call('file.remove', { path });
    await b.call('file.remove', { path });
  } finally {
    close();
  }
});

test('lab down removes everything and lab up brings it back', async () => {
  const down = await ferry(['lab', 'down']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(existsSync(labDir()), false);
  const st = await ferry(['vm', 'list', 'lab-a']);
  assert.notEqual(st.code, 0);
  assert.match(st.stderr, /Unknown host "lab-a"[\s\S]*hint:/);
  const up = await ferry(['lab', 'up']);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, new RegExp(`lab-a\\s+${LAB_HOSTS[0]!.address.replace(/\./g, '\\.')}\\s`));
  const list = await ferry(['vm', 'list', 'lab-b', '--json']);
  assert.deepEqual(JSON.parse(list.stdout), []);
});
