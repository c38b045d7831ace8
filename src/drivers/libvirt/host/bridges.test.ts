import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listLinuxBridges } from './bridges.js';

test('listLinuxBridges finds the interfaces that are bridges, with their ports', async () => {
  const sys = await mkdtemp(join(tmpdir(), 'ferry-bridges-'));
  try {
    await mkdir(join(sys, 'br0', 'bridge'), { recursive: true });
    await mkdir(join(sys, 'br0', 'brif', 'eth0'), { recursive: true });
    await mkdir(join(sys, 'br0', 'brif', 'vnet3'), { recursive: true });
    await mkdir(join(sys, 'virbr9', 'bridge'), { recursive: true });
    await mkdir(join(sys, 'eth0'), { recursive: true });
    await writeFile(join(sys, 'lo'), ''); // sysfs holds symlinks; a plain file must not break the walk either
    assert.deepEqual(await listLinuxBridges(sys), [
      { name: 'br0', ports: ['eth0', 'vnet3'] },
      { name: 'virbr9', ports: [] },
    ]);
  } finally {
    await rm(sys, { recursive: true, force: true });
  }
});

test("listLinuxBridges reads this host's /sys/class/net", async () => {
  const bridges = await listLinuxBridges();
  for (const b of bridges) assert.ok(b.name && Array.isArray(b.ports));
});
