import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/exec.js';
import {
  PAYLOAD_SIZE,
  RECORD_SIZE,
  RECORD_WRITER_SHELL,
  checkImage,
  checkRecords,
  decodeRecord,
  encodeRecord,
  lastCounter,
  parseSerialCounters,
  placeOf,
  seqAt,
  verifyReported,
  type DiskRecords,
} from './records.js';

/** An in-memory disk of `slots` slots holding records 1..upTo as the guest lays them out over `diskCount` disks. */
function guestDisk(slots: number, diskIndex: number, diskCount: number, upTo: number): Buffer {
  const disk = Buffer.alloc(slots * RECORD_SIZE);
  for (let seq = 1; seq <= upTo; seq++) {
    const p = placeOf(seq, diskCount);
    if (p.diskIndex !== diskIndex) continue;
    encodeRecord({ seq, disk: `vd${'abc'[diskIndex]}`, diskIndex, diskCount }).copy(disk, p.slot * RECORD_SIZE);
  }
  return disk;
}

function reader(disk: Buffer) {
  return async (offset: number, length: number) => disk.subarray(offset, offset + length);
}

test('a record decodes to the header it was encoded from', () => {
  const header = { seq: 123456, disk: 'vdb', diskIndex: 1, diskCount: 2 };
  const rec = encodeRecord(header);
  assert.equal(rec.length, RECORD_SIZE);
  assert.deepEqual(decodeRecord(rec), { kind: 'record', record: header });
});

test('the guest shell writes byte for byte what encodeRecord builds', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-records-test-'));
  try {
    const payload = 'c0ffee'.repeat(PAYLOAD_SIZE / 6 + 1).slice(0, PAYLOAD_SIZE);
    const file = join(dir, 'rec');
    await run('busybox', ['sh', '-c', `${RECORD_WRITER_SHELL}\nmake_record 42 vdb 1 2 "$1" "$2"`, 'sh', payload, file]);
    const fromShell = await readFile(file);
    assert.equal(fromShell.length, RECORD_SIZE);
    assert.deepEqual(fromShell, encodeRecord({ seq: 42, disk: 'vdb', diskIndex: 1, diskCount: 2 }, payload));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('one changed byte anywhere in a record is detected', () => {
  const rec = encodeRecord({ seq: 7, disk: 'vda', diskIndex: 0, diskCount: 1 });
  for (const at of [0, 20, 63, 64, 2000, 4031, 4040, 4095]) {
    const bad = Buffer.from(rec);
    bad[at] = bad[at]! ^ 0x01;
    const d = decodeRecord(bad);
    assert.equal(d.kind, 'corrupt', `byte ${at} flipped went unnoticed`);
  }
  const payloadByte = Buffer.from(rec);
  payloadByte[1000] = 0x7a === payloadByte[1000] ? 0x79 : 0x7a;
  const d = decodeRecord(payloadByte);
  assert.ok(d.kind === 'corrupt' && d.reason.startsWith('checksum mismatch'), JSON.stringify(d));
});

test('an all-zero slot is empty and garbage has no magic', () => {
  assert.deepEqual(decodeRecord(Buffer.alloc(RECORD_SIZE)), { kind: 'empty' });
  const garbage = Buffer.alloc(RECORD_SIZE, 0x5a);
  assert.deepEqual(decodeRecord(garbage), { kind: 'corrupt', reason: 'no record magic' });
});

test('placeOf and seqAt agree for two disks', () => {
  assert.deepEqual(placeOf(1, 2), { diskIndex: 0, slot: 0 });
  assert.deepEqual(placeOf(2, 2), { diskIndex: 1, slot: 0 });
  assert.deepEqual(placeOf(5, 2), { diskIndex: 0, slot: 2 });
  for (let seq = 1; seq < 50; seq++) {
    const p = placeOf(seq, 3);
    assert.equal(seqAt(p.slot, p.diskIndex, 3), seq);
  }
});

test('checkRecords finds every record of a two-disk guest and verifyReported accepts them', async () => {
  const a = await checkRecords(reader(guestDisk(300, 0, 2, 401)), 300 * RECORD_SIZE, 'vda');
  const b = await checkRecords(reader(guestDisk(300, 1, 2, 401)), 300 * RECORD_SIZE, 'vdb');
  assert.equal(a.intact, 201);
  assert.equal(b.intact, 200);
  assert.equal(a.highestSeq, 401);
  assert.equal(b.highestSeq, 400);
  assert.equal(a.empty, 99);
  assert.deepEqual(a.corrupt, []);
  assert.equal(b.diskIndex, 1);
  assert.equal(b.diskCount, 2);
  // Records written after the last report are fine.
  assert.deepEqual(verifyReported([a, b], 395), { ok: true, lastReportedSeq: 395, missing: [], corrupt: [], problems: [] });
});

test('a zeroed record is reported missing and an overwritten one corrupt', async () => {
  const disk = guestDisk(64, 0, 1, 50);
  disk.fill(0, 9 * RECORD_SIZE, 10 * RECORD_SIZE); // seq 10 never reached the disk
  disk.fill(0x41, 19 * RECORD_SIZE + 100, 19 * RECORD_SIZE + 200); // seq 20 damaged
  const r = await checkRecords(reader(disk), disk.length);
  assert.deepEqual(
    r.corrupt.map((c) => c.slot),
    [19],
  );
  const v = verifyReported([r], 50);
  assert.equal(v.ok, false);
  assert.deepEqual(v.missing, [10, 20]);
  assert.deepEqual(
    v.corrupt.map((c) => [c.disk, c.slot, c.seq]),
    [[0, 19, 20]],
  );
  // Reporting beyond what is on disk is missing too.
  assert.deepEqual(verifyReported([r], 52).missing, [10, 20, 51, 52]);
});

test('a record in the wrong slot or on the wrong disk is corrupt', async () => {
  const disk = guestDisk(16, 0, 1, 5);
  encodeRecord({ seq: 3, disk: 'vda', diskIndex: 0, diskCount: 1 }).copy(disk, 7 * RECORD_SIZE);
  const r = await checkRecords(reader(disk), disk.length);
  assert.deepEqual(r.corrupt, [{ slot: 7, reason: 'misplaced record 3 (belongs to slot 2 of disk 0)' }]);
  const other = await checkRecords(reader(guestDisk(16, 0, 1, 5)), 16 * RECORD_SIZE, 'vdb');
  assert.equal(other.intact, 0);
  assert.equal(other.corrupt.length, 5);
});

test('verifyReported notices disks passed in the wrong order or left out', async () => {
  const a = await checkRecords(reader(guestDisk(32, 0, 2, 40)), 32 * RECORD_SIZE);
  const b = await checkRecords(reader(guestDisk(32, 1, 2, 40)), 32 * RECORD_SIZE);
  const swapped = verifyReported([b, a], 40);
  assert.equal(swapped.ok, false);
  assert.equal(swapped.problems.length, 2);
  const alone = verifyReported([a], 40);
  assert.equal(alone.ok, false);
  assert.match(alone.problems[0]!, /written for 2 disks, but 1 were checked/);
  const none: DiskRecords[] = [];
  assert.equal(verifyReported(none, 0).ok, false);
});

test('serial counters count complete lines only', () => {
  const log = 'SeaBIOS\r\nFERRY-GUEST-READY\r\nFERRY-REC 1\r\nFERRY-REC 2\nnoise FERRY-REC 3\r\nFERRY-REC 4';
  assert.deepEqual(parseSerialCounters(log), [1, 2, 3]);
  assert.equal(lastCounter(log), 3);
  assert.equal(lastCounter('booting...'), 0);
});

test('checkImage reads raw and qcow2 images alike', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-records-test-'));
  try {
    const raw = join(dir, 'disk.raw');
    const disk = guestDisk(512, 0, 1, 100);
    disk.fill(0x33, 40 * RECORD_SIZE, 40 * RECORD_SIZE + 1);
    await writeFile(raw, disk);
    const qcow2 = join(dir, 'disk.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    for (const [path, format] of [
      [raw, 'raw'],
      [qcow2, 'qcow2'],
      [qcow2, undefined],
    ] as const) {
      const r = await checkImage(path, format, { diskId: 'vda' });
      assert.equal(r.intact, 99, `${path} ${format}`);
      assert.deepEqual(
        r.corrupt.map((c) => c.slot),
        [40],
      );
      assert.equal(r.slots, 512);
    }
    await assert.rejects(checkImage(join(dir, 'absent.raw'), 'raw'), { code: 'NOT_FOUND' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
