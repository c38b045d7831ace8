/**
 * Block delta sync on the agent's host: inspect a disk, send one (listening
 * on the host's address) or receive into one (connecting to the source's
 * agent). Data flows agent to agent; the controller only starts both ends
 * and watches progress.
 */
import { randomBytes } from 'node:crypto';
import { inspectDisk, sameDisk, statDisk, type DiskInfo } from '../../storage/image-info.js';
import { describeUsers, findDiskUsers, hasRunningVm, isBusy } from '../../storage/usage.js';
import { deviceMapperAvailable } from '../../storage/lvm.js';
import { FerryError } from '../../util/errors.js';
import { startReceive, type ReceiveOptions, type ReceivePlan, type ReceiveResult, type ReceiveSession } from '../../sync/receiver.js';
import { startSend, type SendOptions } from '../../sync/sender.js';
import type { SendResult } from '../../sync/sync-progress.js';
import { SourceScan } from '../../sync/source-scan.js';
import type { HandlerContext } from '../context.js';
import { trace } from '../../util/trace.js';
import { defaultHashThreads, warmHashThreads } from '../../sync/hash-pool.js';

export interface SyncDiskReport extends DiskInfo {
  /** Human description of who uses the disk, empty when nobody. */
  users: string;
  vmRunning: boolean;
  busy: boolean;
  deviceMapper: boolean;
}

const sessions = new Map<string, ReceiveSession>();
/** Sends under way, until `sync.sendResult` collects them. */
const sends = new Map<string, { result: Promise<SendResult>; abort: AbortController }>();
/**
 * Head-start scans of sources (see source-scan.ts), by the name the
 * controller gave them, until a `sync.send` takes them, they are
 * cancelled, or they expire.
 */
const scans = new Map<string, Promise<SourceScan | undefined>>();
/**
 * Scans told to stop reading ahead (`sync.stopScan`) before they were under
 * way: they stop as soon as they start.
 */
const halted = new Set<string>();
/** A scan nobody takes is dropped after this long: the sync it was for did not happen. */
const SCAN_UNCLAIMED_MS = 60_000;

/** What the controller asks of a source's inspection when a sync follows it: a head-start scan under this name. */
export interface ScanRequest {
  id: string;
  blockSize: number;
  hashThreads?: number;
}

export const syncHandlers = {
  'sync.inspect': async (p: { path: string; role?: 'source' | 'destination'; scan?: ScanRequest }, ctx: HandlerContext): Promise<SyncDiskReport> => {
    trace(`inspect ${p.path}`);
    // A sync follows: the source will read and hash at once, so its hashing
    // threads load meanwhile. (The destination starts its own only if it has
    // no remembered digests, which it learns later.)
    if (p.role === 'source') warmHashThreads(defaultHashThreads());
    // Probing the image and looking for its users are independent: at once.
    const usersLookup = findDiskUsers(p.path).then(
      (found) => ({ found }),
      (error: unknown) => ({ error }),
    );
    const probe = inspectDisk(p.path);
    if (p.role === 'source' && p.scan) startScan(p.scan, p.path, probe, ctx);
    const info = await probe;
    const lookup = await usersLookup;
    trace('inspected');
    if (!info.exists) return { ...info, users: '', vmRunning: false, busy: false, deviceMapper: deviceMapperAvailable() };
    if ('error' in lookup) throw lookup.error;
    const users = lookup.found;
    return { ...info, users: describeUsers(users), vmRunning: hasRunningVm(users), busy: isBusy(users), deviceMapper: deviceMapperAvailable() };
  },

  'sync.receive': async (p: ReceiveOptions, ctx: HandlerContext): Promise<ReceivePlan & { session: string }> => {
    const session = await startReceive(p);
    const id = randomBytes(8).toString('hex');
    sessions.set(id, session);
    ctx.onClose(() => session.cancel());
    return { ...session.plan, session: id };
  },

  'sync.receiveResult': (p: { session: string }): Promise<ReceiveResult> => collect(sessions, p.session),

  /** Drops a scan whose sync will not happen (it failed). */
  'sync.cancelScan': async (p: { scan: string }): Promise<void> => {
    const scan = scans.get(p.scan);
    scans.delete(p.scan);
    halted.delete(p.scan);
    await (await scan)?.close();
  },

  /**
   * Stops a scan from reading ahead, for a sync into a new disk (every block
   * will cross, and would be read twice), but keeps its disk and threads
   * open for the send that follows, which would otherwise start its own.
   */
  'sync.stopScan': async (p: { scan: string }): Promise<void> => {
    halted.add(p.scan);
    await (await scans.get(p.scan))?.stop();
  },

  /**
   * Starts sending a source: answers at once with where the destination
   * must connect (`sync.receive` takes that) and the session to ask
   * `sync.sendResult` about.
   */
  'sync.send': async (p: Omit<SendOptions, 'signal' | 'scan'> & { scan?: string }, ctx: HandlerContext): Promise<{ port: number; token: string; session: string }> => {
    const abort = new AbortController();
    ctx.onClose(() => abort.abort());
    const scan = p.scan === undefined ? undefined : await scans.get(p.scan);
    if (p.scan !== undefined) {
      scans.delete(p.scan);
      halted.delete(p.scan);
    }
    const session = await startSend({ ...p, scan, signal: abort.signal }, (progress) => ctx.notify('sync.progress', progress));
    const id = randomBytes(8).toString('hex');
    sends.set(id, { result: session.result, abort });
    return { port: session.port, token: session.token, session: id };
  },

  'sync.sendResult': (p: { session: string }): Promise<SendResult> => collect(sends, p.session),

  /** Drops a send whose destination will not connect (its preparation failed). */
  'sync.cancelSend': async (p: { session: string }): Promise<void> => {
    const s = sends.get(p.session);
    sends.delete(p.session);
    s?.abort.abort();
    await s?.result.catch(() => undefined);
  },
};

/** Waits for a session's result, then forgets the session. */
async function collect<T>(under: Map<string, { result: Promise<T> }>, id: string): Promise<T> {
  const s = under.get(id);
  if (!s) throw new FerryError('INTERNAL', `Unknown sync session "${id}"`, { hint: 'run the sync again, with the same ferry version on the controller and both hosts' });
  try {
    return await s.result;
  } finally {
    under.delete(id);
  }
}

/**
 * Starts the head-start scan of a source being inspected. It does not wait
 * for qemu-img's probe (tens of milliseconds, more on a busy host): what
 * `stat` says is enough to start reading a raw disk, and the probe, once
 * in, confirms it or replaces the scan with one of the right format.
 */
function startScan(req: ScanRequest, path: string, probe: Promise<DiskInfo>, ctx: HandlerContext): void {
  const cancelled = (): boolean => scans.get(req.id) !== starting;
  const begin = async (info: DiskInfo): Promise<SourceScan> => {
    const scan = await SourceScan.start(info, req.blockSize, req.hashThreads);
    if (halted.has(req.id)) void scan.stop();
    return scan;
  };
  const starting = (async (): Promise<SourceScan | undefined> => {
    const seen = await statDisk(path).catch(() => undefined);
    let scan = seen?.exists && !cancelled() ? await begin(seen) : undefined;
    const info = await probe.catch(() => undefined);
    if (scan && (!info || !sameDisk(scan.info, info) || cancelled())) {
      await scan.close();
      scan = undefined;
    }
    if (!scan && info?.exists && !cancelled()) scan = await begin(info);
    if (scan && cancelled()) {
      await scan.close();
      return undefined;
    }
    return scan;
  })().catch(() => undefined); // without a scan, the sender reads as usual
  scans.set(req.id, starting);
  const drop = (): void => {
    if (scans.get(req.id) !== starting) return;
    scans.delete(req.id);
    halted.delete(req.id);
    void starting.then((scan) => scan?.close());
  };
  setTimeout(drop, SCAN_UNCLAIMED_MS).unref();
  ctx.onClose(drop);
}
