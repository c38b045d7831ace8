/**
 * One disk copied to its planned target through the sync engine, verified:
 * the whole of a cold move's disks, and in a live move the read-only disks
 * a hypervisor leaves where they are (libvirt refuses to mirror them; they
 * cannot change, so a copy before the move is exact).
 */
import type { DiskPlan, StepContext } from '../drivers/driver.js';
import type { DiskProgress } from '../drivers/progress.js';
import { syncDisks } from '../transfer/sync-controller.js';
import { verifyError, type SyncSummary } from '../transfer/sync-summary.js';

/** Copies `p`'s disk into its target image (which must exist), reporting its progress; returns the bytes sent. */
export async function copyDiskToTarget(p: DiskPlan, context: Pick<StepContext, 'source' | 'target' | 'journal' | 'settings'>, onProgress: (progress: DiskProgress) => void): Promise<SyncSummary> {
  const { source, target, journal, settings } = context;
  journal.record('copying', { path: p.targetPath, from: p.disk.path });
  const summary = await syncDisks(
    { client: source, path: p.disk.path, label: `${source.host.name}:${p.disk.path}` },
    { client: target, path: p.targetPath, label: `${target.host.name}:${p.targetPath}` },
    {
      resume: p.resume,
      verify: true,
      // --bandwidth holds for the copy too, as for a live move's mirror and a warm move's passes.
      bandwidthMiB: settings.bandwidthBytes && settings.bandwidthBytes / 2 ** 20,
      onProgress: (s) => onProgress({ device: p.disk.device, done: s.bytesCompared, total: s.bytesTotal, ready: s.phase === 'done' }),
    },
  );
  if (summary.status === 'verify-failed') throw verifyError(summary);
  onProgress({ device: p.disk.device, done: summary.bytes_total, total: summary.bytes_total, ready: true });
  journal.record('copied', { path: p.targetPath, bytes_sent: summary.bytes_sent, blocks_resumed: summary.blocks_resumed, seconds: summary.seconds });
  return summary;
}
