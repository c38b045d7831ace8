/**
 * The destination end of a sync, run by the destination host's agent: checks
 * and opens (or creates) the disk, finds its resume point and remembered
 * digests, and connects to the source agent; receive-stream.ts serves the
 * connection. Nothing is written before the source's Hello.
 */
import * as net from 'node:net';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { openDisk } from '../storage/endpoint.js';
import { createImage, formatForNewImage, inspectDisk, type DiskInfo } from '../storage/image-info.js';
import { createLv, deviceMapperAvailable, lvExists, mapInactiveLv, parseLvPath, type LvName, type MappedLv } from '../storage/lvm.js';
import { describeUsers, findDiskUsers, isBusy } from '../storage/usage.js';
import { FerryError } from '../util/errors.js';
import { loadCheckpoint, resumePoint } from './checkpoint.js';
import { loadDigestCache } from './digest-cache.js';
import { DigestTable } from './digest-table.js';
import { FrameAssembler } from './frame-assembler.js';
import { serveSource, type ReceiveResult, type StreamOptions } from './receive-stream.js';
import { BlockGeometry } from './block-geometry.js';
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
export async function startReceive(options: ReceiveOptions): Promise<ReceiveSession> {
  trace('receive: start');
  const lv = await reachLvWithoutDeviceMapper(options);
  try {
    return await prepare(options, lv);
  } catch (e) {
    await lv?.mapped.release();
    throw e;
  }
}

/**
 * An LV on a kernel without device-mapper has no device node: its extents
 * are reached through a loop device (after creating it, with --create-lv).
 */
async function reachLvWithoutDeviceMapper(options: ReceiveOptions): Promise<{ mapped: MappedLv; created: boolean } | undefined> {
  const name = parseLvPath(options.path);
  if (!name || existsSync(options.path) || deviceMapperAvailable()) return undefined;
  let created = false;
  if (!(await lvExists(name.vg, name.lv))) {
    if (options.createLv === undefined || options.dryRun) return undefined; // refused or reported as missing below
    checkCreateLv(options, name);
    await createLv(name.vg, name.lv, options.sourceSize);
    created = true;
  }
  return { mapped: await mapInactiveLv(name.vg, name.lv), created };
}

function checkCreateLv(options: ReceiveOptions, name: LvName | undefined): asserts name is LvName {
  if (!name || name.vg !== options.createLv) {
    throw new FerryError('USAGE', `Cannot create "${options.path}" with --create-lv ${options.createLv}: the path must be /dev/${options.createLv}/NAME`, {
      hint: `name the destination /dev/${options.createLv}/LV`,
    });
  }
}

async function prepare(options: ReceiveOptions, lv: { mapped: MappedLv; created: boolean } | undefined): Promise<ReceiveSession> {
  // Reads and writes go to the LV's loop device when there is one; messages, checkpoints and records name `options.path`.
  const { target, created } = await prepareTarget(options, lv?.mapped.device ?? options.path, lv?.created ?? false);
  const disk = target.exists ? await openDisk(target, !options.dryRun, { direct: options.direct && !options.dryRun }) : undefined;
  const geometry = new BlockGeometry(options.sourceSize, options.blockSize);
  const { resumeFrom, durableFrom } = await resumeState(options, created, geometry.count);
  const cached = disk && !created && !options.rehash && target.kind === 'file' ? await loadDigestCache(options.path, options.blockSize, geometry.count) : undefined;
  // A file just created reads as zeros throughout: its digests are known
  // without reading it (or starting threads to hash it).
  const known = created && target.kind === 'file' ? DigestTable.zeros(geometry.count) : cached;
  trace('receive: connecting');
  const plan: ReceivePlan = { created, format: target.format ?? options.sourceFormat, size: target.size ?? options.sourceSize, resumeFrom, cachedBlocks: cached?.known() ?? 0 };
  const link = connectToSource(options);
  const { path, sourceId, sourceSize: size, blockSize, dryRun, hashThreads } = options;
  const streamOptions: StreamOptions = { path, sourceId, size, blockSize, dryRun, hashThreads, token: options.source.token, resumeFrom, durableFrom, known };
  const result = link.connected
    .then(() => serveSource(link.socket, link.input, streamOptions, disk))
    .finally(async () => {
      link.socket.destroy();
      await disk?.close();
      await lv?.mapped.release();
    });
  result.catch(() => undefined);
  return {
    plan,
    result,
    cancel: async () => {
      // Dropping the stream makes the session checkpoint what it applied; wait for that.
      link.cancel();
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
    },
  };
}

/** The destination as it will be written: checked when it exists, created (unless a dry run) when it does not. */
async function prepareTarget(options: ReceiveOptions, ioPath: string, createdLv: boolean): Promise<{ target: DiskInfo; created: boolean }> {
  const info = await inspectDisk(ioPath);
  trace('receive: inspected');
  if (info.exists) {
    await checkExisting(options, ioPath, info);
    return { target: info, created: createdLv };
  }
  if (options.dryRun) return { target: info, created: createdLv };
  await createTarget(options);
  return { target: await inspectDisk(options.path), created: true };
}

/** Refuses a destination in use (unless forced) or smaller than the source. */
async function checkExisting(options: ReceiveOptions, ioPath: string, info: DiskInfo): Promise<void> {
  const users = await findDiskUsers(ioPath);
  if (isBusy(users) && !options.force) {
    throw new FerryError('IN_USE', `Cannot write to "${options.path}": it is ${describeUsers(users)}`, {
      hint: 'unmount it or stop the VM using it first; --force overrides this check (and risks corrupting it)',
      details: { ...users },
    });
  }
  if (info.size! < options.sourceSize) {
    throw new FerryError('TARGET_TOO_SMALL', `Cannot sync into "${options.path}": it holds ${info.size} bytes, the source ${options.sourceSize}`, {
      hint: 'grow the destination (qemu-img resize, lvextend) or name a new path to create',
      details: { destinationSize: info.size, sourceSize: options.sourceSize },
    });
  }
}

/** Creates a missing destination: an LV with --create-lv, an image file; a missing device is an error. */
async function createTarget(options: ReceiveOptions): Promise<void> {
  const lv = parseLvPath(options.path);
  if (options.createLv !== undefined) {
    checkCreateLv(options, lv);
    await createLv(lv.vg, lv.lv, options.sourceSize);
  } else if (lv || dirname(options.path) === '/dev') {
    throw new FerryError('NOT_FOUND', `Cannot sync into "${options.path}": no such device`, {
      hint: lv ? `pass --create-lv ${lv.vg} to create the logical volume` : 'check the device path',
    });
  } else {
    await createImage({ path: options.path, format: formatForNewImage(options.path, options.sourceFormat, options.createFormat), sizeBytes: options.sourceSize });
  }
}

/** Where a resumed run starts: the checkpoint's, when it is of this source and geometry; else the start. */
async function resumeState(options: ReceiveOptions, created: boolean, blockCount: number): Promise<{ resumeFrom: number; durableFrom: number }> {
  if (!options.resume || created || options.dryRun) return { resumeFrom: 0, durableFrom: 0 };
  const checkpoint = await loadCheckpoint(options.path);
  if (!checkpoint || checkpoint.sourceId !== options.sourceId || checkpoint.size !== options.sourceSize || checkpoint.blockSize !== options.blockSize) {
    return { resumeFrom: 0, durableFrom: 0 };
  }
  const resumeFrom = Math.min(resumePoint(checkpoint), blockCount);
  return { resumeFrom, durableFrom: Math.min(checkpoint.durableBlocks, resumeFrom) };
}

/** The connection to the source's listener, under way. */
interface SourceLink {
  socket: net.Socket;
  /** Assembles what the socket reads, straight into block buffers (see frame-assembler.ts). */
  input: FrameAssembler;
  /** Resolves once connected; rejects on failure, timeout or cancel. */
  connected: Promise<void>;
  cancel(): void;
}

function connectToSource(options: ReceiveOptions): SourceLink {
  const { host, port } = options.source;
  const input = new FrameAssembler(options.blockSize);
  const socket = net.connect({
    host,
    port,
    // Each read goes where the assembler says: a block's buffer, or its scratch buffer.
    onread: {
      buffer: () => input.nextBuffer(),
      callback: (n: number, buf: Uint8Array): boolean => {
        input.received(buf, n);
        return true;
      },
    },
  });
  let cancelled = false;
  const unreachable = (why: string): FerryError => new FerryError('UNREACHABLE', `Cannot connect to the source agent at ${host}:${port}: ${why}`, { hint: UNREACHABLE_HINT });
  const connected = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unreachable(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (e) => {
      clearTimeout(timer);
      reject(unreachable(e.message));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (cancelled) reject(new FerryError('ABORTED', `Sync into "${options.path}" cancelled before the source connected`, { hint: 'run the same command again to start the sync over' }));
    });
  });
  const cancel = (): void => {
    cancelled = true;
    socket.destroy();
  };
  return { socket, input, connected, cancel };
}

const CONNECT_TIMEOUT_MS = 30_000;
const UNREACHABLE_HINT = 'check that the destination host can reach the source address (firewall, inventory address)';
