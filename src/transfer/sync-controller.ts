/**
 * Runs one sync between two hosts' agents, from the controller's side:
 * checks both ends, starts the source's sender, has the destination's
 * receiver connect to it, relays progress, and merges both ends' results.
 * The bytes never pass through the controller: the engine in src/sync runs
 * in the agents, and this module only talks to them.
 */
import type { AgentResult } from '../agent/registry.js';
import type { CompressMode } from '../sync/compression.js';
import type { SendResult, SyncProgress } from '../sync/sync-progress.js';
import { FerryError } from '../util/errors.js';
import { HeadStartScan } from './head-start-scan.js';
import { isSyncProgress, type SyncAgent } from './sync-agent.js';
import { summarize, type SyncSummary } from './sync-summary.js';

export interface SyncSide {
  client: SyncAgent;
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

export const DEFAULT_BLOCK_SIZE = 1 << 20;

type Inspected = AgentResult<'sync.inspect'>;

/** One sync from `src` to `dst`; resolves with both ends' results merged. */
export async function syncDisks(src: SyncSide, dst: SyncSide, options: SyncOptions = {}): Promise<SyncSummary> {
  const startedAt = performance.now();
  const blockSize = checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE);
  // Into an older copy most blocks turn out equal: the source reads and
  // hashes ahead while the checks below run and the destination gets ready.
  const scan = new HeadStartScan(src.client, blockSize, options.hashThreads);
  // Sent at once, even to agents still starting: each reaches its agent right behind the agent's first call.
  const sourceInspected = src.client.call('sync.inspect', { path: src.path, role: 'source', scan: scan.request });
  const destinationInspected = dst.client.call('sync.inspect', { path: dst.path, role: 'destination' });
  sourceInspected.catch(() => undefined); // awaited below, once both agents are known to be up
  destinationInspected.then(
    (d) => void (d.exists ? undefined : scan.stop()),
    () => void scan.cancel(),
  );
  try {
    // An agent that did not start explains more than the calls it failed.
    await Promise.all([src.client.ready, dst.client.ready]);
    const inspected = await Promise.all([sourceInspected, destinationInspected]);
    return await new SyncRun(src, dst, options, blockSize, startedAt).run(inspected, scan);
  } catch (e) {
    await scan.cancel();
    throw e;
  }
}

function checkBlockSize(blockSize: number): number {
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 64 << 20 || blockSize % 4096 !== 0) {
    throw new FerryError('USAGE', `Invalid block size ${blockSize}`, { hint: 'use a multiple of 4 KiB between 4 KiB and 64 MiB, e.g. --block-size 1M' });
  }
  return blockSize;
}

/** Refuses a pair of ends no sync can join. */
function checkEnds(src: SyncSide, dst: SyncSide, s: Inspected, d: Inspected, force: boolean): void {
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
  if (d.exists && d.busy && !force) {
    throw new FerryError('IN_USE', `Cannot write to "${dst.label}": it is ${d.users}`, {
      hint: 'unmount it or stop the VM using it first; --force overrides this check (and risks corrupting it)',
    });
  }
}

/** The sync once both ends are inspected (and the source perhaps scanning ahead). */
class SyncRun {
  private readonly warnings: string[] = [];

  constructor(
    private readonly src: SyncSide,
    private readonly dst: SyncSide,
    private readonly options: SyncOptions,
    private readonly blockSize: number,
    private readonly startedAt: number,
  ) {}

  async run([s, d]: [Inspected, Inspected], scan: HeadStartScan): Promise<SyncSummary> {
    checkEnds(this.src, this.dst, s, d, this.options.force ?? false);
    const verify = this.verification(s);
    if (s.backingFile) this.warn(`Source "${this.src.label}" has a backing file (${s.backingFile}): the destination receives the full guest-visible content, not an overlay`);
    const sourceId = `${this.src.client.facts.hostId}:${this.src.path}:${s.size}`;
    const sending = await this.startSource(s, sourceId, verify, scan.id);
    const relay = (method: string, params: unknown): void => {
      if (method === 'sync.progress' && isSyncProgress(params)) this.options.onProgress?.(params);
    };
    this.src.client.on('notification', relay);
    try {
      const plan = await this.startDestination(s, sourceId, sending);
      if (this.options.resume && plan.resumeFrom === 0 && !plan.created) this.warn('No usable checkpoint on the destination: comparing from the start (unchanged blocks still do not cross)');
      const [sent, received] = await this.results(sending.session, plan.session);
      const { src, dst, options, blockSize, startedAt, warnings } = this;
      return summarize({ source: src.label, destination: dst.label, dryRun: options.dryRun ?? false, blockSize, startedAt, warnings, sent, plan, received });
    } finally {
      this.src.client.off('notification', relay);
    }
  }

  private warn(message: string): void {
    this.warnings.push(message);
    this.options.onWarning?.(message);
  }

  /** Whether the run ends with a verification: not of a source that a running VM keeps changing. */
  private verification(s: Inspected): boolean {
    let verify = this.options.verify ?? true;
    if (!s.vmRunning) return verify;
    this.warn(`Source "${this.src.label}" is in use by a running VM (${s.users}): the copy is crash-consistent only, good as a pre-seed before a final pass with the VM stopped`);
    if (verify && !this.options.dryRun) {
      verify = false;
      this.warn('Verification skipped: the running VM changes the source while it is read');
    }
    return verify;
  }

  /** Starts the source's sender: it listens, the destination connects to it (see src/sync/sender.ts). */
  private startSource(s: Inspected, sourceId: string, verify: boolean, scan: string | undefined): Promise<AgentResult<'sync.send'>> {
    const { src, options } = this;
    const info = { path: s.path, exists: s.exists, kind: s.kind, format: s.format, size: s.size, dev: s.dev, ino: s.ino, lv: s.lv, backingFile: s.backingFile };
    return src.client.call('sync.send', {
      path: src.path,
      address: src.client.host.address,
      sourceId,
      blockSize: this.blockSize,
      compress: options.compress ?? 'auto',
      bandwidth: options.bandwidthMiB ? options.bandwidthMiB * (1 << 20) : undefined,
      resume: options.resume ?? false,
      dryRun: options.dryRun ?? false,
      verify,
      fsync: options.fsync ?? true,
      hashThreads: options.hashThreads,
      info,
      scan,
    });
  }

  /** Prepares the destination and has it connect to the source; a destination that fails calls the send off. */
  private async startDestination(s: Inspected, sourceId: string, sending: AgentResult<'sync.send'>): Promise<AgentResult<'sync.receive'>> {
    const { src, dst, options } = this;
    try {
      return await dst.client.call('sync.receive', {
        path: dst.path,
        source: { host: src.client.host.address, port: sending.port, token: sending.token },
        sourceSize: s.size!,
        sourceFormat: s.format!,
        sourceId,
        blockSize: this.blockSize,
        resume: options.resume ?? false,
        dryRun: options.dryRun ?? false,
        force: options.force ?? false,
        createLv: options.createLv,
        createFormat: options.createFormat,
        hashThreads: options.hashThreads,
        rehash: options.rehash ?? false,
        direct: options.direct ?? true,
      });
    } catch (e) {
      await src.client.call('sync.cancelSend', { session: sending.session }).catch(() => undefined);
      throw e;
    }
  }

  /** Both ends' results; when the source fails, the destination's own error (e.g. its disk failed) explains more than "connection lost". */
  private async results(sendSession: string, receiveSession: string): Promise<[SendResult, AgentResult<'sync.receiveResult'>]> {
    const received = this.dst.client.call('sync.receiveResult', { session: receiveSession });
    received.catch(() => undefined);
    let sent: SendResult;
    try {
      sent = await this.src.client.call('sync.sendResult', { session: sendSession });
    } catch (e) {
      const destinationError = await received.then(
        () => undefined,
        (x: unknown) => x,
      );
      if (destinationError instanceof FerryError && destinationError.code !== 'ABORTED') throw destinationError;
      throw e;
    }
    return [sent, await received];
  }
}
