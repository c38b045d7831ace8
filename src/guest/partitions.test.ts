import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/exec.js';
import { parseSfdiskJson, readPartitionTable } from './partitions.js';

test('MBR with an extended partition lists primaries and logicals, not the container', () => {
  const t = parseSfdiskJson(`{"partitiontable": {"label": "dos", "id": "0x8c7a1f2e", "device": "disk.raw", "unit": "sectors", "sectorsize": 512,
    "partitions": [
      {"node": "disk.raw1", "start": 2048, "size": 2457600, "type": "83", "bootable": true},
      {"node": "disk.raw2", "start": 2459648, "size": 407552, "type": "5"},
      {"node": "disk.raw5", "start": 2461696, "size": 131072, "type": "83"},
      {"node": "disk.raw6", "start": 2594816, "size": 272384, "type": "82"}
    ]}}`);
  assert.equal(t.kind, 'mbr');
  assert.deepEqual(
    t.partitions.map((p) => [p.number, p.offset, p.type]),
    [
      [1, 1048576, '83'],
      [5, 2461696 * 512, '83'],
      [6, 2594816 * 512, '82'],
    ],
  );
  assert.equal(t.partitions[0]!.partUuid, '8c7a1f2e-01');
  assert.equal(t.partitions[0]!.bootable, true);
});

test('reads a real GPT table written by sfdisk', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-pt-'));
  try {
    const disk = join(dir, 'disk.raw');
    await truncate(disk, 64 << 20).catch(async () => {
      await run('truncate', ['-s', '64M', disk]);
    });
    await run('sfdisk', ['-q', disk], { input: 'label: gpt\nsize=8MiB, type=21686148-6449-6E6F-744E-656564454649\ntype=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=lvm\n' });
    const t = await readPartitionTable(disk);
    assert.equal(t.kind, 'gpt');
    assert.deepEqual(
      t.partitions.map((p) => [p.number, p.type, p.name ?? '']),
      [
        [1, '21686148-6449-6e6f-744e-656564454649', ''],
        [2, 'e6d6d379-f507-44c2-a23c-238f2a3df928', 'lvm'],
      ],
    );
    assert.match(t.partitions[1]!.partUuid!, /^[0-9a-f-]{36}$/);
    const none = join(dir, 'blank.raw');
    await run('truncate', ['-s', '1M', none]);
    assert.equal((await readPartitionTable(none)).kind, 'none');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
