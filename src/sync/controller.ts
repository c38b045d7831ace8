/**
 * Runs one sync between two hosts' agents: checks both ends, starts the
 * destination's listener, starts the source's sender towards it, relays
 * progress, and merges both ends' results. The bytes never pass through
 * the controller.
 */
import { randomBytes } from 'node:crypto';
import type { AgentResult } from '../agent/registry.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import type { CompressMode } from './compression.js';
import type { SendResult, SyncProgress } from './sender.js';

export interface SyncSide {
  client: AgentClient;
  path: string;
  /** For messages: HOST:PATH as the user typed it. */
  label: string;
}

export interface SyncOptions {
  blockSize?: number;
  compress?: CompressMode;
  /** MiB per second on the wire; undefined for no limit. */
  bandwidthMiB?: number;
  resume?: boolean;
  dryRun?: boolean;
  verify?: boolean;
  /** Flush the destination at the end (default true); false leaves it to the kernel, like cp and qemu-img convert. */
  fsync?: boolean;
  /** Hash the whole destination even when its digests from the last sync are still valid. */
  rehash?: boolean;
  /** Write the destination with direct I/O where it allows (default true); false goes through the page cache. */
  direct?: boolean;
  force?: boolean;
  /** Volume group to create a missing destination LV in. */
  createLv?: string;
  /** Format of a destination image that must be created. */
  createFormat?: string;
  hashThreads?: number;
  onProgress?: (p: SyncProgress) => void;
  onWarning?: (message: string) => void;
}

export interface SyncSummary {
  status: 'ok' | 'dry-run' | 'verify-failed';
  source: string;
  destination: string;
  bytes_total: number;
  bytes_sent: number;
  bytes_changed: number;
  bytes_written: number;
  blocks_total: number;
  blocks_changed: number;
  blocks_zero: number;
  blocks_resumed: number;
  /** Destination blocks whose digests came from the last sync's record, not from reading them. */
  blocks_cached: number;
  block_size: number;
  created: boolean;
  compressed: boolean;
  /** The destination was written with direct I/O, bypassing the page cache. */
  direct_io: boolean;
  seconds: number;
  verified: boolean;
  mismatches: Array<{ start: number; length: number }>;
  warnings: string[];
}

export const DEFAULT_BLOCK_SIZE = 1 << 20;

export async function syncDisks(src: SyncSide, dst: SyncSide, o: SyncOptions = {}): Promise<SyncSummary> {
  const started = performance.now();
  const blockSize = o.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 64 << 20 || blockSize % 4096 !== 0) {
    throw new FerryError('USAGE', `Invalid block size ${blockSize}`, { hint: 'use a multiple of 4 KiB between 4 KiB and 64 MiB, e.g. --block-size 1M' });
  }
  // Into an older copy most blocks turn out equal: the source reads and
  // hashes ahead from the moment it is inspected, while the checks below
  // run and the destination gets ready (source-scan.ts). Into a new disk
  // every block crosses, and would be read twice: the scan stops as soon as
  // the destination turns out missing, keeping its disk and threads for the
  // send; if the sync fails it is called off.
  const scan = randomBytes(8).toString('hex');
  let scanning = true;
  const cancelScan = async (): Promise<void> => {
    if (!scanning) return;
    scanning = false;
    await src.client.call('sync.cancelScan', { scan }).catch(() => undefined);
  };
  const stopScan = (): void => void src.client.call('sync.stopScan', { scan }).catch(() => undefined);
  // Sent at once, even to agents still starting (AgentClient.start): each
  // reaches its agent right behind the agent's first call.
  const sourceInspected = src.client.call('sync.inspect', { path: src.path, role: 'source', scan: { id: scan, blockSize, hashThreads: o.hashThreads } });
  const destinationInspected = dst.client.call('sync.inspect', { path: dst.path, role: 'destination' });
  sourceInspected.catch(() => undefined); // awaited below, once both agents are known to be up
  destinationInspected.then(
    (d) => void (d.exists ? undefined : stopScan()),
    () => void cancelScan(),
  );
  try {
    // An agent that did not start explains more than the calls it failed.
    await Promise.all([src.client.ready, dst.client.ready]);
    return await runSync(src, dst, o, blockSize, started, await Promise.all([sourceInspected, destinationInspected]), () => (scanning ? scan : undefined));
  } catch (e) {
    await cancelScan();
    throw e;
  }
}

/** The sync once both ends are inspected (and the source perhaps scanning ahead). */
async function runSync(
  src: SyncSide,
  dst: SyncSide,
  o: SyncOptions,
  blockSize: number,
  started: number,
  [s, d]: [AgentResult<'sync.inspect'>, AgentResult<'sync.inspect'>],
  /** The source's head-start scan, if still wanted. */
  scan: () => string | undefined,
): Promise<SyncSummary> {
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    o.onWarning?.(m);
  };
  if (!s.exists) {
    throw new FerryError('NOT_FOUND', `Cannot sync from "${src.label}": source not found`, { hint: 'check the source path and host' });
  }
  if (d.exists && src.client.facts.hostId === dst.client.facts.hostId && s.dev === d.dev && s.ino === d.ino) {
    throw new FerryError('USAGE', `Cannot sync "${src.label}" onto itself: source and destination are the same disk`, { hint: 'name a different destination' });
  }
  if (d.exists && d.size! < s.size!) {
    throw new FerryError('TARGET_TOO_SMALL', `Cannot sync into "${dst.label}": it holds ${d.size} bytes, the source ${s.size}`, {
      hint: 'grow the destination (qemu-img resize, lvextend) or name a new path to create',
    });
  }
  if (d.exists && d.busy && !o.force) {
    throw new FerryError('IN_USE', `Cannot write to "${dst.label}": it is ${d.users}`, {
      hint: 'unmount it or stop the VM using it first; --force overrides this check (and risks corrupting it)',
    });
  }
  let verify = o.verify ?? true;
  if (s.vmRunning) {
    warn(`Source "${src.label}" is in use by a running VM (${s.users}): the copy is crash-consistent only, good as a pre-seed before a final pass with the VM stopped`);
    if (verify && !o.dryRun) {
      verify = false;
      warn('Verification skipped: the running VM changes the source while it is read');
    }
  }
  if (s.backingFile) warn(`Source "${src.label}" has a backing file (${s.backingFile}): the destination receives the full guest-visible content, not an overlay`);

  const sourceId = `${src.client.facts.hostId}:${src.path}:${s.size}`;
  const sourceInfo = { path: s.path, exists: s.exists, kind: s.kind, format: s.format, size: s.size, dev: s.dev, ino: s.ino, lv: s.lv, backingFile: s.backingFile };
  // The source listens, the destination connects to it (see sender.ts).
  const sending = await src.client.call('sync.send', {
    path: src.path,
    address: src.client.host.address,
    sourceId,
    blockSize,
    compress: o.compress ?? 'auto',
    bandwidth: o.bandwidthMiB ? o.bandwidthMiB * (1 << 20) : undefined,
    resume: o.resume ?? false,
    dryRun: o.dryRun ?? false,
    verify,
    fsync: o.fsync ?? true,
    hashThreads: o.hashThreads,
    info: sourceInfo,
    scan: scan(),
  });
  const onNote = (method: string, params: unknown): void => {
    if (method === 'sync.progress') o.onProgress?.(params as SyncProgress);
  };
  src.client.on('notification', onNote);
  let sent: SendResult;
  let received: Promise<AgentResult<'sync.receiveResult'>> | undefined;
  let plan: AgentResult<'sync.receive'>;
  try {
    plan = await dst.client.call('sync.receive', {
      path: dst.path,
      source: { host: src.client.host.address, port: sending.port, token: sending.token },
      sourceSize: s.size!,
      sourceFormat: s.format!,
      sourceId,
      blockSize,
      resume: o.resume ?? false,
      dryRun: o.dryRun ?? false,
      force: o.force ?? false,
      createLv: o.createLv,
      createFormat: o.createFormat,
      hashThreads: o.hashThreads,
      rehash: o.rehash ?? false,
      direct: o.direct ?? true,
    });
  } catch (e) {
    src.client.off('notification', onNote);
    await src.client.call('sync.cancelSend', { session: sending.session }).catch(() => undefined);
    throw e;
  }
  try {
    if (o.resume && plan.resumeFrom === 0 && !plan.created) warn('No usable checkpoint on the destination: comparing from the start (unchanged blocks still do not cross)');
    received = dst.client.call('sync.receiveResult', { session: plan.session });
    received.catch(() => undefined);
    sent = await src.client.call('sync.sendResult', { session: sending.session });
  } catch (e) {
    // The destination's view (e.g. its disk failed) explains more than "connection lost".
    const theirs = await received?.then(
      () => undefined,
      (x: unknown) => x,
    );
    if (theirs instanceof FerryError && theirs.code !== 'ABORTED') throw theirs;
    throw e;
  } finally {
    src.client.off('notification', onNote);
  }
  const got = await received!;

  const summary: SyncSummary = {
    status: o.dryRun ? 'dry-run' : sent.mismatches.length ? 'verify-failed' : 'ok',
    source: src.label,
    destination: dst.label,
    bytes_total: sent.bytesTotal,
    bytes_sent: sent.bytesSent,
    bytes_changed: sent.bytesChanged,
    bytes_written: got.bytesWritten,
    blocks_total: sent.blocksTotal,
    blocks_changed: sent.blocksChanged,
    blocks_zero: sent.blocksZero,
    blocks_resumed: sent.blocksResumed,
    blocks_cached: plan.cachedBlocks,
    block_size: blockSize,
    created: plan.created,
    compressed: sent.compressing,
    direct_io: got.directIo,
    seconds: (performance.now() - started) / 1000,
    verified: sent.verified,
    mismatches: sent.mismatches,
    warnings,
  };
  return summary;
}

/** The error for a failed verification, naming the differing ranges. */
export function verifyError(s: SyncSummary): FerryError {
  const ranges = s.mismatches
    .slice(0, 10)
    .map((r) => `${r.start}+${r.length}`)
    .join(', ');
  return new FerryError('VERIFY_FAILED', `Verification failed: "${s.destination}" differs from "${s.source}" at ${s.mismatches.length} range(s) (offset+length in bytes): ${ranges}${s.mismatches.length > 10 ? ', ...' : ''}`, {
    hint: 'run the sync again (only the differing blocks are sent); if it keeps failing, check the destination disk for errors',
    details: { mismatches: s.mismatches },
  });
}
