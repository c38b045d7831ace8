/**
 * Block delta sync on the agent's host: inspect a disk, receive into one
 * (listening on the host's address) or send one to another agent. Data flows
 * agent to agent; the controller only starts both ends and watches progress.
 */
import { randomBytes } from 'node:crypto';
import { inspectDisk, type DiskInfo } from '../../storage/image-info.js';
import { describeUsers, findDiskUsers, hasRunningVm, isBusy } from '../../storage/usage.js';
import { deviceMapperAvailable } from '../../storage/lvm.js';
import { FerryError } from '../../util/errors.js';
import { startReceive, type ReceiveOptions, type ReceivePlan, type ReceiveResult, type ReceiveSession } from '../../sync/receiver.js';
import { sendDisk, type SendOptions, type SendResult } from '../../sync/sender.js';
import { SourceScan } from '../../sync/source-scan.js';
import type { HandlerContext } from '../context.js';
import { trace } from '../../util/trace.js';
import { warmHashThreads } from '../../sync/hash-pool.js';
import { cpus } from 'node:os';

export interface SyncDiskReport extends DiskInfo {
  /** Human description of who uses the disk, empty when nobody. */
  users: string;
  vmRunning: boolean;
  busy: boolean;
  deviceMapper: boolean;
}

const sessions = new Map<string, ReceiveSession>();
/** Head-start scans of sources, until a `sync.send` takes them (or they expire). */
const scans = new Map<string, SourceScan>();
/** A scan nobody takes is dropped after this long: the sync it was for did not happen. */
const SCAN_UNCLAIMED_MS = 60_000;
/** Probes of sources under way or just made: a `sync.prescan` arriving meanwhile uses them. */
const probes = new Map<string, Promise<DiskInfo>>();

export const syncHandlers = {
  'sync.inspect': async (p: { path: string; role?: 'source' | 'destination' }): Promise<SyncDiskReport> => {
    trace(`inspect ${p.path}`);
    // A sync follows: the source will read and hash at once, so its hashing
    // threads load meanwhile. (The destination starts its own only if it has
    // no remembered digests, which it learns later.)
    if (p.role === 'source') warmHashThreads(Math.min(4, cpus().length));
    // Probing the image and looking for its users are independent: at once.
    const usersLookup = findDiskUsers(p.path).then(
      (found) => ({ found }),
      (error: unknown) => ({ error }),
    );
    const probe = inspectDisk(p.path);
    if (p.role === 'source') {
      probes.set(p.path, probe);
      const forget = (): void => void setTimeout(() => probes.get(p.path) === probe && probes.delete(p.path), 2000).unref();
      probe.then(forget, forget);
    }
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

  'sync.receiveResult': async (p: { session: string }): Promise<ReceiveResult> => {
    const s = sessions.get(p.session);
    if (!s) throw new FerryError('INTERNAL', `Unknown sync session "${p.session}"`);
    try {
      return await s.result;
    } finally {
      sessions.delete(p.session);
    }
  },

  /**
   * Starts reading and hashing a source ahead of its `sync.send` (see
   * source-scan.ts); answers at once with the scan's name.
   */
  'sync.prescan': async (p: { path: string; blockSize: number; hashThreads?: number }, ctx: HandlerContext): Promise<{ scan: string }> => {
    // Usually sent while this agent is still inspecting the source: no need to probe it twice.
    const info = await (probes.get(p.path) ?? inspectDisk(p.path));
    const scan = await SourceScan.start(info, p.blockSize, p.hashThreads);
    const id = randomBytes(8).toString('hex');
    scans.set(id, scan);
    const drop = (): void => {
      if (scans.delete(id)) void scan.close();
    };
    setTimeout(drop, SCAN_UNCLAIMED_MS).unref();
    ctx.onClose(drop);
    return { scan: id };
  },

  /** Drops a scan whose sync will not happen. */
  'sync.cancelScan': async (p: { scan: string }): Promise<void> => {
    const scan = scans.get(p.scan);
    scans.delete(p.scan);
    await scan?.close();
  },

  'sync.send': async (p: Omit<SendOptions, 'signal' | 'scan'> & { scan?: string }, ctx: HandlerContext): Promise<SendResult> => {
    const abort = new AbortController();
    ctx.onClose(() => abort.abort());
    const scan = p.scan === undefined ? undefined : scans.get(p.scan);
    if (p.scan !== undefined) scans.delete(p.scan);
    return sendDisk({ ...p, scan, signal: abort.signal }, (progress) => ctx.notify('sync.progress', progress));
  },
};
