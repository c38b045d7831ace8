/**
 * A disk opened for block I/O on its guest-visible content, whatever it is
 * underneath: a regular raw file or block device is used directly; any other
 * image format goes through a FUSE export (see fuse-export.ts).
 *
 * A raw disk can also be opened for direct I/O (O_DIRECT): writes then go to
 * the device without passing through the page cache. For a copy that must
 * end up durable that is the fast way: buffered writes first fill memory the
 * host may have to find (on a virtual machine, fault in from the
 * hypervisor) and then wait for writeback at the final flush, where direct
 * writes stream to the disk as they arrive and the flush has almost nothing
 * left to do. It also leaves the host's page cache to its VMs.
 */
import * as fs from 'node:fs/promises';
import { constants, writevSync } from 'node:fs';
import { FerryError, isSystemError, messageOf } from '../util/errors.js';
import { run } from '../util/exec.js';
import { alignedSharedMemory, isAligned, isAlignedView } from './aligned-memory.js';
import { dataRanges, type ByteRange } from './allocation.js';
import type { BlockSource } from './block-read.js';
import { exportAsRaw, type RawExport } from './fuse-export.js';
import type { DiskInfo } from './image-info.js';

export interface DiskEndpoint {
  readonly info: DiskInfo;
  readonly size: number;
  readonly format: string;
  /** The path reads and writes go to (the disk itself, or its raw export). */
  readonly rawPath: string;
  /** Whether aligned writes (and reads from `blockSource(true)`) bypass the page cache. */
  readonly direct: boolean;
  /**
   * Whether a completed write survives the writing process dying: true when
   * writes go straight to the kernel (raw files, block devices), false
   * through a FUSE export, whose daemon caches image metadata until flushed.
   */
  readonly writesSurviveProcessExit: boolean;
  /** Data ranges right now, from the allocation map. */
  dataRanges(): Promise<ByteRange[]>;
  /**
   * Descriptors to read blocks from (see block-read.ts): with `fromDevice`
   * on a direct disk, the aligned part of each block comes from the device,
   * not the page cache, into aligned memory.
   */
  blockSource(fromDevice?: boolean): BlockSource;
  write(buf: Uint8Array, position: number): Promise<void>;
  /** Writes consecutive pieces at `position` in one call. */
  writev(parts: Buffer[], position: number): Promise<void>;
  /** Makes a range read as zeros, deallocating it where the disk can. */
  zeroRange(start: number, length: number): Promise<void>;
  /** Makes everything written so far durable. */
  flush(): Promise<void>;
  /** Drops the page cache for the disk, so the next reads come from the device. */
  dropCache(): Promise<void>;
  /** Reopens the I/O descriptor (used before reading back written data). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Use direct I/O where the disk allows it (raw files on most filesystems, block devices). */
  direct?: boolean;
}

export async function openDisk(info: DiskInfo, writable: boolean, options: OpenOptions = {}): Promise<DiskEndpoint> {
  if (!info.exists || !info.format || info.size === undefined || !info.kind) {
    throw new FerryError('NOT_FOUND', `Cannot open disk "${info.path}": not found`, { hint: 'check the path' });
  }
  let exp: RawExport | undefined;
  let rawPath = info.path;
  if (info.format !== 'raw') {
    exp = await exportAsRaw(info.path, info.format, writable);
    rawPath = exp.rawPath;
  }
  const flags = writable ? 'r+' : 'r';
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(rawPath, flags);
  } catch (e) {
    await exp?.close();
    throw new FerryError('IN_USE', `Cannot open disk "${info.path}" for ${writable ? 'writing' : 'reading'}: ${messageOf(e)}`, {
      hint: 'check permissions and that nothing else holds the disk exclusively',
    });
  }
  // A second descriptor for direct I/O; filesystems without it (tmpfs) refuse the flag.
  let dfh: fs.FileHandle | undefined;
  if (options.direct && !exp) {
    dfh = await fs.open(rawPath, (writable ? constants.O_RDWR : constants.O_RDONLY) | constants.O_DIRECT).catch(() => undefined);
  }
  const staging = new StagingBuffers();
  const size = info.size;
  const format = info.format;
  const kind = info.kind;
  let punchWorks = true;

  const bufferedWrite = async (buf: Uint8Array, position: number): Promise<void> => {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
      done += bytesWritten;
    }
  };
  /** Writes the pieces with direct I/O: from where they are when that is one piece of aligned memory, else copied into some. */
  const directWrite = async (parts: Uint8Array[], total: number, position: number): Promise<void> => {
    const inPlace = parts.length === 1 && isAlignedView(parts[0]!);
    const buf = inPlace ? parts[0]! : staging.take(total);
    try {
      if (!inPlace) {
        let at = 0;
        for (const p of parts) {
          buf.set(p, at);
          at += p.length;
        }
      }
      let done = 0;
      while (done < total) {
        let bytesWritten: number;
        try {
          ({ bytesWritten } = await dfh!.write(buf, done, total - done, position + done));
        } catch (e) {
          // Some filesystems open with O_DIRECT and then refuse the writes:
          // the page cache it is, for this write and the rest.
          if (!isSystemError(e, 'EINVAL') || !dfh) throw e;
          const refused = dfh;
          dfh = undefined;
          await refused.close().catch(() => undefined);
          await bufferedWrite(buf.subarray(done, total), position + done);
          return;
        }
        if (bytesWritten === 0 || !isAligned(bytesWritten)) throw new Error(`short direct write at ${position + done}`);
        done += bytesWritten;
      }
    } finally {
      if (!inPlace) staging.give(buf as Buffer);
    }
  };
  const canDirect = (position: number, length: number): boolean => dfh !== undefined && isAligned(position) && isAligned(length);

  const ep: DiskEndpoint = {
    info,
    size,
    format,
    rawPath,
    get direct() {
      return dfh !== undefined;
    },
    writesSurviveProcessExit: exp === undefined,
    dataRanges: () => dataRanges(info.path, format, size, kind),
    blockSource(fromDevice = false) {
      return { fd: fromDevice && dfh ? dfh.fd : fh.fd, tailFd: fh.fd };
    },
    async write(buf, position) {
      if (canDirect(position, buf.length)) return directWrite([buf], buf.length, position);
      await bufferedWrite(buf, position);
    },
    async writev(parts, position) {
      let total = 0;
      for (const p of parts) total += p.length;
      if (canDirect(position, total)) return directWrite(parts, total, position);
      // Synchronous on purpose: one pwritev per received block keeps up with
      // the network, where promise-based writes through libuv's thread pool
      // fall behind it.
      const written = writevSync(fh.fd, parts, position);
      // Short write (rare): finish the rest in one piece.
      if (written < total) await bufferedWrite(Buffer.concat(parts).subarray(written), position + written);
    },
    async zeroRange(start, length) {
      if (punchWorks) {
        const r = await run('fallocate', ['--punch-hole', '--offset', String(start), '--length', String(length), rawPath], { allowFailure: true });
        if (r.exitCode === 0) return;
        punchWorks = false; // the filesystem or device cannot: write zeros from now on
      }
      const zeros = Buffer.alloc(Math.min(length, 1 << 20));
      for (let off = 0; off < length; off += zeros.length) await ep.write(zeros.subarray(0, Math.min(zeros.length, length - off)), start + off);
    },
    async flush() {
      await fh.datasync();
    },
    async dropCache() {
      // posix_fadvise(DONTNEED) on the whole file; GNU dd does exactly that.
      for (const p of new Set([rawPath, info.path])) await run('dd', [`if=${p}`, 'iflag=nocache', 'count=0', 'status=none'], { allowFailure: true });
    },
    async reopen() {
      await fh.close();
      fh = await fs.open(rawPath, flags);
    },
    async close() {
      await fh.close().catch(() => undefined);
      await dfh?.close().catch(() => undefined);
      await exp?.close();
    },
  };
  return ep;
}

/** Aligned buffers for direct writes, kept for reuse (as many as writes run at once). */
class StagingBuffers {
  private free: Buffer[] = [];

  take(length: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= length);
    if (i >= 0) return this.free.splice(i, 1)[0]!.subarray(0, length);
    return Buffer.from(alignedSharedMemory(length), 0, length);
  }

  give(buf: Buffer): void {
    // Back to its full extent: the view may have been cut to one write's length.
    this.free.push(Buffer.from(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset));
    if (this.free.length > 8) this.free.shift();
  }
}
