/**
 * The destination end of a sync, run by the destination host's agent: checks
 * and opens (or creates) the disk, finds its resume point and remembered
 * digests, and connects to the source agent; receive-stream.ts serves the
 * connection. Nothing is written before the source's Hello.
 */
import * as net from 'node:net';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { openDisk, type DiskEndpoint } from '../storage/endpoint.js';
import { createImage, formatForNewImage, inspectDisk, type DiskInfo } from '../storage/image-info.js';
import { createLv, deviceMapperAvailable, lvExists, mapInactiveLv, parseLvPath, type LvName, type MappedLv } from '../storage/lvm.js';
import { describeUsers, findDiskUsers, isBusy } from '../storage/usage.js';
import { FerryError } from '../util/errors.js';
import { loadCheckpoint, resumePoint } from './checkpoint.js';
import { loadDigestCache } from './digest-cache.js';
import { DigestTable } from './digest-table.js';
import { FrameAssembler } from './frame-assembler.js';
import { serveSource, type ReceiveResult } from './receive-stream.js';
import { trace } from '../util/trace.js';

export type { ReceiveResult } from './receive-stream.js';

export interface ReceiveOptions {
  path: string;
  /** The source agent's listener, and the session token to say to it. */
  source: { host: string; port: number; token: string };
  sourceSize: number;
  sourceFormat: string;
  /** Format for a destination image that must be created (default: from its name, else the source's). */
  createFormat?: string;
  sourceId: string;
  blockSize: number;
  resume: boolean;
  dryRun: boolean;
  force: boolean;
  /** Volume group to create a missing LV in. */
  createLv?: string;
  hashThreads?: number;
  /** Hash the whole destination even when its digests from the last sync are still valid. */
  rehash?: boolean;
  /** Write with direct I/O where the disk allows (bypassing the page cache). */
  direct: boolean;
}

export interface ReceivePlan {
  created: boolean;
  format: string;
  size: number;
  /** Blocks a previous run confirmed (resume), 0 otherwise. */
  resumeFrom: number;
  /** Blocks whose digests come from the last sync's record instead of reading the destination. */
  cachedBlocks: number;
}

export interface ReceiveSession {
  plan: ReceivePlan;
  result: Promise<ReceiveResult>;
  /** Drops the connection and closes the disk (controller gone, Ctrl-C). */
  cancel(): Promise<void>;
}

/** Checks the destination, prepares it and connects to the source; nothing is written before the source's Hello. */
export async function startReceive(o: ReceiveOptions): Promise<ReceiveSession> {
  trace('receive: start');
  const lv = await reachLvWithoutDeviceMapper(o);
  try {
    return await prepare(o, lv);
  } catch (e) {
    await lv?.mapped.release();
    throw e;
  }
}

/**
 * An LV on a kernel without device-mapper has no device node: its extents
 * are reached through a loop device (after creating it, with --create-lv).
 */
async function reachLvWithoutDeviceMapper(o: ReceiveOptions): Promise<{ mapped: MappedLv; created: boolean } | undefined> {
  const name = parseLvPath(o.path);
  if (!name || existsSync(o.path) || deviceMapperAvailable()) return undefined;
  let created = false;
  if (!(await lvExists(name.vg, name.lv))) {
    if (o.createLv === undefined || o.dryRun) return undefined; // refused or reported as missing below
    checkCreateLv(o, name);
    await createLv(name.vg, name.lv, o.sourceSize);
    created = true;
  }
  return { mapped: await mapInactiveLv(name.vg, name.lv), created };
}

function checkCreateLv(o: ReceiveOptions, name: LvName | undefined): asserts name is LvName {
  if (!name || name.vg !== o.createLv) {
    throw new FerryError('USAGE', `Cannot create "${o.path}" with --create-lv ${o.createLv}: the path must be /dev/${o.createLv}/NAME`, {
      hint: `name the destination /dev/${o.createLv}/LV`,
    });
  }
}

async function prepare(o: ReceiveOptions, lv: { mapped: MappedLv; created: boolean } | undefined): Promise<ReceiveSession> {
  // Reads and writes go to `ioPath`; messages, checkpoints and records name `o.path`.
  const ioPath = lv?.mapped.device ?? o.path;
  const info = await inspectDisk(ioPath);
  trace('receive: inspected');
  let created = lv?.created ?? false;
  let disk: DiskEndpoint | undefined;
  let target: DiskInfo = info;
  if (info.exists) {
    const users = await findDiskUsers(ioPath);
    if (isBusy(users) && !o.force) {
      throw new FerryError('IN_USE', `Cannot write to "${o.path}": it is ${describeUsers(users)}`, {
        hint: 'unmount it or stop the VM using it first; --force overrides this check (and risks corrupting it)',
        details: { ...users },
      });
    }
    if (info.size! < o.sourceSize) {
      throw new FerryError('TARGET_TOO_SMALL', `Cannot sync into "${o.path}": it holds ${info.size} bytes, the source ${o.sourceSize}`, {
        hint: 'grow the destination (qemu-img resize, lvextend) or name a new path to create',
        details: { destinationSize: info.size, sourceSize: o.sourceSize },
      });
    }
  } else if (!o.dryRun) {
    const lv = parseLvPath(o.path);
    if (o.createLv !== undefined) {
      checkCreateLv(o, lv);
      await createLv(lv.vg, lv.lv, o.sourceSize);
    } else if (lv || dirname(o.path) === '/dev') {
      throw new FerryError('NOT_FOUND', `Cannot sync into "${o.path}": no such device`, {
        hint: lv ? `pass --create-lv ${lv.vg} to create the logical volume` : 'check the device path',
      });
    } else {
      await createImage({ path: o.path, format: formatForNewImage(o.path, o.sourceFormat, o.createFormat), sizeBytes: o.sourceSize });
    }
    created = true;
    target = await inspectDisk(o.path);
  }
  if (target.exists) disk = await openDisk(target, !o.dryRun, { direct: o.direct && !o.dryRun });

  let resumeFrom = 0;
  let durableFrom = 0;
  const blockCount = Math.ceil(o.sourceSize / o.blockSize);
  if (o.resume && !created && !o.dryRun) {
    const c = await loadCheckpoint(o.path);
    if (c && c.sourceId === o.sourceId && c.size === o.sourceSize && c.blockSize === o.blockSize) {
      resumeFrom = Math.min(resumePoint(c), blockCount);
      durableFrom = Math.min(c.durableBlocks, resumeFrom);
    }
  }
  let cached: DigestTable | undefined;
  if (disk && !created && !o.rehash && target.kind === 'file') cached = await loadDigestCache(o.path, o.blockSize, blockCount);

  // A file just created reads as zeros throughout: its digests are known
  // without reading it (or starting threads to hash it).
  const known = created && target.kind === 'file' ? DigestTable.zeros(blockCount) : cached;

  trace('receive: connecting');
  const plan: ReceivePlan = { created, format: target.format ?? o.sourceFormat, size: target.size ?? o.sourceSize, resumeFrom, cachedBlocks: cached?.known() ?? 0 };
  const { host, port, token } = o.source;
  const input = new FrameAssembler(o.blockSize);
  const socket = net.connect({
    host,
    port,
    // Each read goes where the assembler says: a block's buffer, or its scratch buffer (see frame-assembler.ts).
    onread: {
      buffer: () => input.nextBuffer(),
      callback: (n: number, buf: Uint8Array): boolean => {
        input.received(buf, n);
        return true;
      },
    },
  });
  let cancelled = false;
  const connected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new FerryError('UNREACHABLE', `Cannot connect to the source agent at ${host}:${port}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s`, { hint: UNREACHABLE_HINT }));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(new FerryError('UNREACHABLE', `Cannot connect to the source agent at ${host}:${port}: ${e.message}`, { hint: UNREACHABLE_HINT }));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (cancelled) reject(new FerryError('ABORTED', `Sync into "${o.path}" cancelled before the source connected`));
    });
  });
  const result = connected
    .then(() =>
      serveSource(
        socket,
        input,
        { path: o.path, sourceId: o.sourceId, size: o.sourceSize, blockSize: o.blockSize, dryRun: o.dryRun, hashThreads: o.hashThreads, token, resumeFrom, durableFrom, known },
        disk,
      ),
    )
    .finally(async () => {
      socket.destroy();
      await disk?.close();
      await lv?.mapped.release();
    });
  result.catch(() => undefined);

  return {
    plan,
    result,
    cancel: async () => {
      // Dropping the stream makes the session checkpoint what it applied; wait for that.
      cancelled = true;
      socket.destroy();
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}
const CONNECT_TIMEOUT_MS = 30_000;
const UNREACHABLE_HINT = 'check that the destination host can reach the source address (firewall, inventory address)';
