/**
 * A libvirt migration job's statistics (virsh domjobinfo) as the progress
 * every driver reports: the disks and the RAM, for the live view.
 */
import type { DiskPlan } from '../driver.js';
import type { DiskProgress, RamProgress } from '../progress.js';
import type { DomainJobInfo } from './virsh-output.js';

export function diskProgress(job: DomainJobInfo, plans: readonly DiskPlan[]): DiskProgress[] {
  // libvirt reports the disks together: shown as one line per disk sharing the total.
  const total = job.diskTotal ?? plans.reduce((s, p) => s + p.disk.virtualSize, 0);
  const done = job.diskProcessed ?? 0;
  const ready = (job.memoryProcessed ?? 0) > 0;
  if (plans.length === 0) return [];
  if (plans.length === 1) return [{ device: plans[0]!.disk.device, done, total, ready }];
  return [{ device: plans.map((p) => p.disk.device).join('+'), done, total, ready }];
}

export function ramProgress(job: DomainJobInfo): RamProgress | undefined {
  // Until the RAM's copy starts, libvirt's figures are zeros: the view then counts the guest's whole RAM as still to come.
  if (!job.memoryTotal || (job.memoryProcessed ?? 0) + (job.memoryRemaining ?? 0) === 0) return undefined;
  return {
    transferred: job.memoryProcessed ?? 0,
    remaining: job.memoryRemaining ?? 0,
    total: job.memoryTotal,
    dirtyRate: (job.memoryDirtyPagesPerSecond ?? 0) * (job.memoryPageSize ?? 4096),
    throughput: job.memoryBytesPerSecond ?? 0,
    iterations: job.memoryIteration ?? 0,
  };
}
