/**
 * The test guest's disk records: what the guest writes, and the checker that
 * proves, after a migration or a crash, that every record the guest reported
 * on its serial console is intact on the disk it belongs to.
 *
 * Format (one record = one 4096-byte slot, all text so busybox can build it):
 *   [0, 64)      header  `FERRYREC1 seq=%012d disk=%-8.8s idx=%03d of=%03d` + spaces + "\n"
 *   [64, 4032)   payload 3968 printable bytes (the guest uses random hex, fixed per boot)
 *   [4032, 4096) trailer `md5=<32 hex>` + spaces + "\n"; md5 over bytes [0, 4032)
 * Sequence numbers start at 1. With k disks, record N goes to disk (N-1) mod k
 * at slot floor((N-1) / k), so every slot holds exactly one known record and a
 * record found anywhere else is misplaced. Slots are never reused: the guest
 * stops writing when a disk is full (see guest-image.ts).
 */
import { createHash } from 'node:crypto';
import { open, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAllZero } from '../storage/zeros.js';
import { FerryError, isSystemError, messageOf } from '../util/errors.js';
import { run } from '../util/exec.js';
import { statPath } from '../storage/stat.js';

export const RECORD_SIZE = 4096;
export const RECORD_MAGIC = 'FERRYREC1';
const HEADER_SIZE = 64;
const TRAILER_SIZE = 64;
export const PAYLOAD_SIZE = RECORD_SIZE - HEADER_SIZE - TRAILER_SIZE;
const SUMMED_SIZE = RECORD_SIZE - TRAILER_SIZE;
/** Printed by the guest on ttyS0 once its disks are found, before the first record. */
export const GUEST_READY = 'FERRY-GUEST-READY';
/** Printed by the guest after record N is durable: `FERRY-REC N`. */
export const RECORD_REPORT = 'FERRY-REC';

const HEADER_RE = /^FERRYREC1 seq=(\d{12}) disk=(.{8}) idx=(\d{3}) of=(\d{3}) {8}\n$/;
const TRAILER_RE = /^md5=([0-9a-f]{32}) {27}\n$/;

/**
 * The shell function the guest's /init uses to build a record, kept here so the
 * format has one home. `make_record N DISK IDX COUNT PAYLOAD FILE` writes one
 * 4096-byte record to FILE. Needs busybox printf and md5sum; one fork.
 */
export const RECORD_WRITER_SHELL = `make_record() {
  printf 'FERRYREC1 seq=%012d disk=%-8.8s idx=%03d of=%03d%8s\\n%s' "$1" "$2" "$3" "$4" '' "$5" > "$6"
  set -- "$6" $(md5sum "$6")
  printf 'md5=%s%27s\\n' "$2" '' >> "$1"
}`;

export interface RecordHeader {
  /** Sequence number, from 1. */
  seq: number;
  /** The guest's name for the disk (vda, vdb, ...). */
  disk: string;
  /** Position of that disk among the guest's disks, from 0. */
  diskIndex: number;
  /** How many disks the guest writes to. */
  diskCount: number;
}

export type DecodedSlot = { kind: 'empty' } | { kind: 'record'; record: RecordHeader } | { kind: 'corrupt'; reason: string };

/** Where record `seq` lives when the guest writes to `diskCount` disks. */
export function placeOf(seq: number, diskCount: number): { diskIndex: number; slot: number } {
  return { diskIndex: (seq - 1) % diskCount, slot: Math.floor((seq - 1) / diskCount) };
}

/** The record that belongs in `slot` of disk `diskIndex` (inverse of placeOf). */
export function seqAt(slot: number, diskIndex: number, diskCount: number): number {
  return slot * diskCount + diskIndex + 1;
}

/** Builds a record exactly as the guest does; the payload defaults to a pattern derived from seq. */
export function encodeRecord(header: RecordHeader, payload?: Buffer | string): Buffer {
  const body = payload === undefined ? defaultPayload(header.seq) : Buffer.from(payload);
  if (body.length !== PAYLOAD_SIZE) {
    throw new FerryError('INTERNAL', `Cannot encode record ${header.seq}: payload is ${body.length} bytes, not ${PAYLOAD_SIZE}`);
  }
  const head =
    `${RECORD_MAGIC} seq=${String(header.seq).padStart(12, '0')} disk=${header.disk.slice(0, 8).padEnd(8)} ` +
    `idx=${String(header.diskIndex).padStart(3, '0')} of=${String(header.diskCount).padStart(3, '0')}${' '.repeat(8)}\n`;
  const summed = Buffer.concat([Buffer.from(head, 'latin1'), body]);
  const md5 = createHash('md5').update(summed).digest('hex');
  return Buffer.concat([summed, Buffer.from(`md5=${md5}${' '.repeat(27)}\n`, 'latin1')]);
}

function defaultPayload(seq: number): Buffer {
  const unit = `payload-of-record-${seq};`;
  return Buffer.from(unit.repeat(Math.ceil(PAYLOAD_SIZE / unit.length)).slice(0, PAYLOAD_SIZE), 'latin1');
}

/** Reads one 4096-byte slot: empty (all zero), a sound record, or corrupt with the reason. */
export function decodeRecord(slot: Buffer): DecodedSlot {
  if (slot.length !== RECORD_SIZE) return { kind: 'corrupt', reason: `slot is ${slot.length} bytes, not ${RECORD_SIZE}` };
  if (isAllZero(slot)) return { kind: 'empty' };
  const head = slot.toString('latin1', 0, HEADER_SIZE);
  if (!head.startsWith(RECORD_MAGIC + ' ')) return { kind: 'corrupt', reason: 'no record magic' };
  const h = HEADER_RE.exec(head);
  if (!h) return { kind: 'corrupt', reason: 'malformed header' };
  const t = TRAILER_RE.exec(slot.toString('latin1', SUMMED_SIZE, RECORD_SIZE));
  if (!t) return { kind: 'corrupt', reason: 'malformed trailer' };
  const md5 = createHash('md5').update(slot.subarray(0, SUMMED_SIZE)).digest('hex');
  if (md5 !== t[1]) return { kind: 'corrupt', reason: `checksum mismatch (stored ${t[1]}, computed ${md5})` };
  const record: RecordHeader = {
    seq: Number(h[1]),
    disk: h[2]!.trimEnd(),
    diskIndex: Number(h[3]),
    diskCount: Number(h[4]),
  };
  if (record.seq < 1 || record.diskCount < 1 || record.diskIndex >= record.diskCount) {
    return { kind: 'corrupt', reason: `impossible header (seq ${record.seq}, disk ${record.diskIndex} of ${record.diskCount})` };
  }
  return { kind: 'record', record };
}

export interface SlotProblem {
  slot: number;
  reason: string;
}

export interface DiskRecords {
  /** The disk id asked for, else the one found in the records, if any. */
  disk?: string;
  sizeBytes: number;
  slots: number;
  /** Highest sequence number found intact (0 if none). */
  highestSeq: number;
  intact: number;
  empty: number;
  corrupt: SlotProblem[];
  /** Sequence numbers found intact and in their right slot, ascending. */
  seqs: number[];
  /** Disk position and disk count the records claim (undefined on a disk without records). */
  diskIndex?: number;
  diskCount?: number;
}

/** Reads a disk through `read` and sorts every slot into intact, empty or corrupt. */
export async function checkRecords(read: (offset: number, length: number) => Promise<Buffer>, sizeBytes: number, diskId?: string): Promise<DiskRecords> {
  const slots = Math.floor(sizeBytes / RECORD_SIZE);
  const chunkSlots = 256; // 1 MiB reads
  const seqs: number[] = [];
  const corrupt: SlotProblem[] = [];
  let empty = 0;
  let place: { disk: string; diskIndex: number; diskCount: number } | undefined;
  for (let first = 0; first < slots; first += chunkSlots) {
    const count = Math.min(chunkSlots, slots - first);
    const chunk = await read(first * RECORD_SIZE, count * RECORD_SIZE);
    if (chunk.length !== count * RECORD_SIZE) {
      throw new FerryError('VERIFY_FAILED', `Cannot check records: read at offset ${first * RECORD_SIZE} returned ${chunk.length} bytes, not ${count * RECORD_SIZE}`);
    }
    for (let i = 0; i < count; i++) {
      const slot = first + i;
      const decoded = decodeRecord(chunk.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
      if (decoded.kind === 'empty') {
        empty++;
        continue;
      }
      if (decoded.kind === 'corrupt') {
        corrupt.push({ slot, reason: decoded.reason });
        continue;
      }
      const record = decoded.record;
      const home = placeOf(record.seq, record.diskCount);
      if (home.slot !== slot || home.diskIndex !== record.diskIndex) {
        corrupt.push({ slot, reason: `misplaced record ${record.seq} (belongs to slot ${home.slot} of disk ${home.diskIndex})` });
      } else if (diskId !== undefined && record.disk !== diskId) {
        corrupt.push({ slot, reason: `record ${record.seq} was written for disk "${record.disk}", not "${diskId}"` });
      } else if (place && (place.disk !== record.disk || place.diskIndex !== record.diskIndex || place.diskCount !== record.diskCount)) {
        corrupt.push({
          slot,
          reason: `record ${record.seq} claims disk "${record.disk}" ${record.diskIndex} of ${record.diskCount}, other records on this disk claim "${place.disk}" ${place.diskIndex} of ${place.diskCount}`,
        });
      } else {
        place ??= { disk: record.disk, diskIndex: record.diskIndex, diskCount: record.diskCount };
        seqs.push(record.seq);
      }
    }
  }
  return {
    disk: diskId ?? place?.disk,
    sizeBytes,
    slots,
    highestSeq: seqs.length ? seqs[seqs.length - 1]! : 0,
    intact: seqs.length,
    empty,
    corrupt,
    seqs,
    diskIndex: place?.diskIndex,
    diskCount: place?.diskCount,
  };
}

export interface ReportedVerdict {
  /** True when every reported record is intact where it belongs and nothing is corrupt. */
  ok: boolean;
  lastReportedSeq: number;
  /** Every N <= lastReportedSeq not found intact on its disk, ascending. */
  missing: number[];
  /** Every corrupt slot on every disk, with the record that belongs there. */
  corrupt: Array<SlotProblem & { disk: number; seq: number }>;
  /** Layout mismatches (disks passed in the wrong order, a disk left out). */
  problems: string[];
}

/**
 * Checks that every record up to `lastReportedSeq` (the guest's last
 * `FERRY-REC N`) is intact on its disk. `disks` must be in the guest's order
 * (vda, vdb, ...). Records beyond the last reported one are allowed (the
 * guest may have written them before the report reached the serial log), but
 * a corrupt slot anywhere fails: each record is one aligned 4 KiB O_DIRECT
 * write, so no crash or migration should leave a torn one.
 */
export function verifyReported(disks: readonly DiskRecords[], lastReportedSeq: number): ReportedVerdict {
  const problems: string[] = [];
  const diskCount = disks.length;
  if (diskCount === 0) {
    return { ok: false, lastReportedSeq, missing: range(1, lastReportedSeq), corrupt: [], problems: ['no disk was checked'] };
  }
  disks.forEach((d, i) => {
    if (d.diskCount !== undefined && d.diskCount !== diskCount) {
      problems.push(`disk ${i} (${d.disk ?? '?'}) holds records written for ${d.diskCount} disks, but ${diskCount} were checked`);
    }
    if (d.diskIndex !== undefined && d.diskIndex !== i) {
      problems.push(`disk ${i} (${d.disk ?? '?'}) holds the records of disk ${d.diskIndex}; pass disks in the guest's order`);
    }
  });
  const found = disks.map((d) => new Set(d.seqs));
  const missing: number[] = [];
  for (let n = 1; n <= lastReportedSeq; n++) {
    if (!found[placeOf(n, diskCount).diskIndex]!.has(n)) missing.push(n);
  }
  const corrupt = disks.flatMap((d, i) => d.corrupt.map((c) => ({ ...c, disk: i, seq: seqAt(c.slot, i, diskCount) })));
  return { ok: missing.length === 0 && corrupt.length === 0 && problems.length === 0, lastReportedSeq, missing, corrupt, problems };
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n++) out.push(n);
  return out;
}

/**
 * Every `FERRY-REC N` in a serial log, in order. Only complete lines count: a
 * line cut short when QEMU was killed could show a truncated number.
 */
export function parseSerialCounters(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/FERRY-REC (\d+)\r?\n/g)) out.push(Number(m[1]));
  return out;
}

/** The highest record the guest reported as durable, 0 if none. */
export function lastCounter(text: string): number {
  let last = 0;
  for (const n of parseSerialCounters(text)) if (n > last) last = n;
  return last;
}

export type ImageFormat = 'raw' | 'qcow2';

export interface CheckImageOptions {
  /** The guest's name for this disk (vda, ...), checked against each record. */
  diskId?: string;
  /** Read an image that a running QEMU holds open (qemu-img -U); the result may be torn. */
  forceShare?: boolean;
}

/**
 * Checks the records in a disk image: raw is read directly, qcow2 through a
 * temporary raw copy (qemu-img convert). The format is detected when left out.
 */
export async function checkImage(path: string, format?: ImageFormat, options: CheckImageOptions = {}): Promise<DiskRecords> {
  const share = options.forceShare ? ['-U'] : [];
  format ??= await detectFormat(path, share);
  if (format === 'raw') return checkRawFile(path, options.diskId);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-records-'));
  try {
    const raw = join(dir, 'disk.raw');
    await run('qemu-img', ['convert', ...share, '-f', format, '-O', 'raw', path, raw]);
    return await checkRawFile(raw, options.diskId);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function detectFormat(path: string, share: string[]): Promise<ImageFormat> {
  const r = await run('qemu-img', ['info', ...share, '--output=json', path]);
  const format = (JSON.parse(r.stdout) as { format?: string }).format;
  if (format !== 'raw' && format !== 'qcow2') {
    throw new FerryError('BAD_FORMAT', `Cannot check records in "${path}": format "${format}" is not raw or qcow2`, {
      hint: 'convert the image with "qemu-img convert -O raw" and check the copy',
    });
  }
  return format;
}

async function checkRawFile(path: string, diskId?: string): Promise<DiskRecords> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw new FerryError('NOT_FOUND', `Cannot open disk "${path}": ${isSystemError(e, 'ENOENT') ? 'file not found' : messageOf(e)}`, {
      hint: "check the path of the test guest's disk image",
      cause: e,
    });
  });
  try {
    // A block device (the guest's disk on an LV) has no length of its own: statPath reads its size.
    const size = (await statPath(path)).size ?? 0;
    return await checkRecords(
      async (offset, length) => {
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      },
      size,
      diskId,
    );
  } finally {
    await fh.close();
  }
}
