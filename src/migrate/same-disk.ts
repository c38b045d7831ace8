/**
 * Whether an image on the source and one on the target hold the same disk,
 * as a backing file must on both hosts, or a read-only image that ferry
 * uses where it lies. The same bytes answer at once: a copy made with cp,
 * rsync or scp. An image format's file may differ where the disk it holds
 * does not (a qcow2 written by `ferry sync` or `qemu-img convert` lays out
 * its clusters its own way): then the format and virtual size must match,
 * and the sync engine's dry run, which writes nothing, must find no block
 * that differs.
 */
import type { AgentClient } from '../hosts/agent-client.js';
import { syncDisks } from '../transfer/sync-controller.js';

export interface DiskComparison {
  same: boolean;
  /** How they were found the same: byte for byte, or by the disk they hold. */
  by?: 'bytes' | 'content';
  /** The files' SHA-256, when it came to hashing them: not for images of another format or size. */
  sourceSha256?: string;
  targetSha256?: string;
}

export async function compareDisks(sourcePath: string, targetPath: string, source: AgentClient, target: AgentClient): Promise<DiskComparison> {
  // Asked first, being cheap: images of another format or size hold other disks, and neither is read whole.
  const [[s], [t]] = await Promise.all([source.call('image.chain', { path: sourcePath }), target.call('image.chain', { path: targetPath })]);
  if (!s || !t || t.format !== s.format || t.virtualSize !== s.virtualSize) return { same: false };
  const [a, b] = await Promise.all([source.call('file.sha256', { path: sourcePath }), target.call('file.sha256', { path: targetPath })]);
  const hashes = { sourceSha256: a.sha256, targetSha256: b.sha256 };
  if (a.sha256 === b.sha256) return { same: true, by: 'bytes', ...hashes };
  // A raw file is its disk: other bytes are another disk.
  if (s.format === 'raw') return { same: false, ...hashes };
  const dryRun = await syncDisks(
    { client: source, path: sourcePath, label: `${source.host.name}:${sourcePath}` },
    { client: target, path: targetPath, label: `${target.host.name}:${targetPath}` },
    { dryRun: true, verify: false },
  );
  return dryRun.blocks_changed === 0 ? { same: true, by: 'content', ...hashes } : { same: false, ...hashes };
}
