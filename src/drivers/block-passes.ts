/**
 * The passes of a warm move's pre-copy, run by the source's QEMU whichever
 * driver started it. A dirty bitmap on each disk records what the guest
 * writes; each pass is a backup job that pushes the disk (the first pass)
 * or only the bitmap's blocks (every later pass) into the target's NBD
 * export. The job keeps the bitmap in step with what it copied
 * (bitmap-mode=always): when it ends, the bitmap holds exactly the blocks
 * not copied plus those written since the pass began, whether the job
 * completed, failed or was cancelled. So a pass interrupted by a broken
 * link, a killed ferry or a rebooted target is continued by the next one,
 * and no pass reads the disk to find what changed.
 *
 * On qcow2 the bitmap is persistent: QEMU stores it in the image when it
 * closes, so the record survives a restart of QEMU too. On raw disks it
 * lives as long as the QEMU process.
 */
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { crossesToTarget, type BlockMonitor, type DiskPlan } from './driver.js';

export const WARM_BITMAP = 'ferry-warm';
/** Polls start fast (a pass of a few changed blocks ends within milliseconds) and slow down to this. */
const POLL_MAX_MS = 250;

export interface PassDisk {
  device: string;
  /** The node the guest's device reads and writes (the format node). */
  node: string;
  format: string;
  /** The target's NBD export name for it. */
  exportName: string;
  /** first pass: top copies what the source's image holds (the target reads as zeros, or shares the base); full copies all. */
  firstSync: 'top' | 'full';
  index: number;
}

export type Tracking = 'tracking' | 'none' | 'unusable';
/** first: the whole disk, with a new bitmap; changes: the bitmap's blocks. */
export type PassKind = 'first' | 'changes';

interface BitmapInfo {
  name: string;
  count: number;
  persistent?: boolean;
  recording?: boolean;
  inconsistent?: boolean;
}

interface NodeInfo {
  'node-name': string;
  'dirty-bitmaps'?: BitmapInfo[];
}

interface JobInfo {
  device: string;
  status: string;
  offset: number;
  len: number;
  error?: string;
}

export interface PassProgress {
  device: string;
  done: number;
  total: number;
}

export interface PassResult {
  /** Bytes each disk's job covered (for a first pass: the disk; later: the changed blocks). */
  bytes: Record<string, number>;
  ms: number;
}

/** The disks a warm move copies (not those already on the target), named as the source's monitor knows them. */
export function passDisks(plans: readonly DiskPlan[], nodes: ReadonlyMap<string, string>): PassDisk[] {
  return plans.filter(crossesToTarget).map((p) => ({
    device: p.disk.device,
    node: nodes.get(p.disk.device) ?? p.disk.device,
    format: p.disk.format,
    exportName: p.disk.device,
    // A new image reads as zeros, and one over the same base reads as the base: only the source's top crosses.
    firstSync: p.create || p.base ? 'top' : 'full',
    index: p.index,
  }));
}

export const jobId = (d: Pick<PassDisk, 'index'>): string => `ferry-warm-${d.index}`;
export const nbdNode = (d: Pick<PassDisk, 'index'>): string => `ferry-warm-nbd-${d.index}`;

async function bitmaps(monitor: BlockMonitor): Promise<Map<string, BitmapInfo | undefined>> {
  const nodes = await monitor.execute<NodeInfo[]>('query-named-block-nodes', { flat: true });
  return new Map(nodes.map((n) => [n['node-name'], n['dirty-bitmaps']?.find((b) => b.name === WARM_BITMAP)]));
}

/** Whether each disk's QEMU still records the guest's writes since an earlier pre-copy began. */
export async function tracking(monitor: BlockMonitor, disks: readonly PassDisk[]): Promise<Map<string, Tracking>> {
  const found = await bitmaps(monitor);
  return new Map(
    disks.map((d) => {
      const b = found.get(d.node);
      return [d.device, !b ? 'none' : b.inconsistent || b.recording === false ? 'unusable' : 'tracking'];
    }),
  );
}

/** Bytes the guest wrote since the last pass began and no pass has copied yet. */
export async function pendingBytes(monitor: BlockMonitor, disks: readonly PassDisk[]): Promise<Record<string, number>> {
  const found = await bitmaps(monitor);
  return Object.fromEntries(disks.map((d) => [d.device, found.get(d.node)?.count ?? 0]));
}

/** Removes what an earlier pass left in QEMU (a job, its NBD node); a job still running is cancelled, which keeps its bitmap right. */
export async function clearLeftovers(monitor: BlockMonitor, disks: ReadonlyArray<Pick<PassDisk, 'index'>>): Promise<void> {
  await clearJobs(monitor, disks);
  const nodes = new Set((await monitor.execute<NodeInfo[]>('query-named-block-nodes', { flat: true })).map((n) => n['node-name']));
  for (const d of disks) if (nodes.has(nbdNode(d))) await monitor.execute('blockdev-del', { 'node-name': nbdNode(d) }).catch(() => undefined);
}

async function clearJobs(monitor: BlockMonitor, disks: ReadonlyArray<Pick<PassDisk, 'index'>>): Promise<void> {
  const ids = new Set(disks.map(jobId));
  for (let i = 0; i < 400; i++) {
    const jobs = (await monitor.execute<JobInfo[]>('query-block-jobs')).filter((j) => ids.has(j.device));
    if (!jobs.length) break;
    for (const j of jobs) {
      if (j.status === 'concluded') await monitor.execute('job-dismiss', { id: j.device }).catch(() => undefined);
      else if (j.status !== 'aborting') await monitor.execute('block-job-cancel', { device: j.device, force: true }).catch(() => undefined);
    }
    await sleep(50);
  }
}

/** Serves the target's images over NBD for the passes, through the target's agent, until closed or until that agent's connection ends. */
export async function openReceiver(target: AgentClient, plans: readonly DiskPlan[]): Promise<{ id: string; port: number }> {
  const { port } = await target.call('net.freePort', { address: target.host.address });
  const images = plans.filter(crossesToTarget).map((p) => ({ path: p.targetPath, format: p.targetFormat, name: p.disk.device }));
  return target.call('image.receive', { images, address: target.host.address, port });
}

/** Adds each disk's NBD client node, connected to the target's export at `server`. */
export async function attachTarget(monitor: BlockMonitor, disks: readonly PassDisk[], server: { host: string; port: number }): Promise<void> {
  for (const d of disks) {
    await monitor.execute('blockdev-add', { driver: 'nbd', 'node-name': nbdNode(d), server: { type: 'inet', host: server.host, port: String(server.port) }, export: d.exportName });
  }
}

export async function detachTarget(monitor: BlockMonitor, disks: readonly PassDisk[]): Promise<void> {
  for (const d of disks) await monitor.execute('blockdev-del', { 'node-name': nbdNode(d) }).catch(() => undefined);
}

/**
 * The arguments of one disk's backup job for a pass. `first`: a new bitmap
 * starts recording in the same transaction as the job that copies the disk.
 */
export function passActions(d: PassDisk, kind: PassKind, speed?: number): Array<{ type: string; data: Record<string, unknown> }> {
  const job: Record<string, unknown> = { 'job-id': jobId(d), device: d.node, target: nbdNode(d), bitmap: WARM_BITMAP, 'bitmap-mode': 'always', 'auto-dismiss': false };
  if (speed) job.speed = Math.floor(speed);
  if (kind === 'changes') return [{ type: 'blockdev-backup', data: { ...job, sync: 'bitmap' } }];
  return [
    { type: 'block-dirty-bitmap-add', data: { node: d.node, name: WARM_BITMAP, persistent: d.format === 'qcow2' } },
    { type: 'blockdev-backup', data: { ...job, sync: d.firstSync } },
  ];
}

/**
 * One pass over every disk at once (each its kind), into the NBD nodes
 * attachTarget added. A first pass drops a bitmap it cannot trust and
 * starts a new one.
 */
export async function runPass(
  monitor: BlockMonitor,
  disks: readonly PassDisk[],
  kinds: ReadonlyMap<string, PassKind>,
  options: { speed?: number; signal?: AbortSignal; onProgress?: (p: PassProgress[]) => void },
): Promise<PassResult> {
  const t0 = performance.now();
  const kindOf = (d: PassDisk): PassKind => kinds.get(d.device) ?? 'changes';
  const found = await bitmaps(monitor);
  for (const d of disks) if (kindOf(d) === 'first' && found.get(d.node)) await monitor.execute('block-dirty-bitmap-remove', { node: d.node, name: WARM_BITMAP });
  const share = options.speed ? options.speed / disks.length : undefined;
  await monitor.execute('transaction', { actions: disks.flatMap((d) => passActions(d, kindOf(d), share)) });
  const bytes: Record<string, number> = {};
  const ids = new Set(disks.map(jobId));
  try {
    for (let poll = 10; ; poll = Math.min(POLL_MAX_MS, poll * 2)) {
      const jobs = (await monitor.execute<JobInfo[]>('query-block-jobs')).filter((j) => ids.has(j.device));
      options.onProgress?.(
        disks.map((d) => {
          const j = jobs.find((x) => x.device === jobId(d));
          return { device: d.device, done: j?.offset ?? 0, total: j?.len ?? 0 };
        }),
      );
      const failed = jobs.find((j) => j.status === 'concluded' && j.error);
      if (failed) {
        throw new FerryError('PRECOPY_FAILED', `Pre-copy of ${disks.find((d) => jobId(d) === failed.device)?.device ?? failed.device} failed: ${failed.error}`, {
          hint: 'check the target host and the link; run the same command again to continue from what was copied',
        });
      }
      if (jobs.length === disks.length && jobs.every((j) => j.status === 'concluded')) {
        for (const j of jobs) bytes[disks.find((d) => jobId(d) === j.device)!.device] = j.len;
        break;
      }
      if (jobs.length < disks.length) throw new FerryError('PRECOPY_FAILED', 'A pre-copy job vanished from the source QEMU', { hint: 'run the same command again to continue' });
      if (options.signal?.aborted) throw new FerryError('ABORTED', 'Interrupted during the pre-copy', { hint: 'what was copied stays on the target: run the same command again to continue' });
      await sleep(poll);
    }
  } finally {
    await clearJobs(monitor, disks);
  }
  return { bytes, ms: Math.round(performance.now() - t0) };
}

/** The record is no longer needed (the move is done, or given up). */
export async function dropTracking(monitor: BlockMonitor, disks: readonly PassDisk[]): Promise<void> {
  for (const d of disks) await monitor.execute('block-dirty-bitmap-remove', { node: d.node, name: WARM_BITMAP }).catch(() => undefined);
}
