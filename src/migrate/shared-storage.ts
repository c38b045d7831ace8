/**
 * Whether a disk is already on the target: the same file, seen by both
 * hosts through shared storage (an NFS or GlusterFS mount, a cluster
 * filesystem on an iSCSI LUN). Equal paths prove nothing, since two hosts
 * with local disks use the same paths; so the source's agent leaves a
 * marker with a random token beside the disk, and the disk is shared when
 * the target's agent reads that token beside the same file name there.
 */
import { randomUUID } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { AgentClient } from '../hosts/agent-client.js';

/** For each source path, whether the target sees the same file at `targetPath`. */
export async function sharedFiles(source: AgentClient, target: AgentClient, disks: ReadonlyArray<{ path: string; targetPath: string }>): Promise<Set<string>> {
  const shared = new Set<string>();
  const byDir = new Map<string, Array<{ path: string; targetPath: string }>>();
  for (const d of disks) {
    if (basename(d.path) !== basename(d.targetPath)) continue; // another name there is another file
    const list = byDir.get(dirname(d.path)) ?? [];
    list.push(d);
    byDir.set(dirname(d.path), list);
  }
  for (const [dir, list] of byDir) {
    const st = await source.call('file.stat', { path: list[0]!.path });
    if (st.type !== 'file') continue; // block devices: not told apart this way
    const token = randomUUID();
    const marker = `.ferry-shared-${token}`;
    try {
      await source.call('file.write', { path: join(dir, marker), text: token });
    } catch {
      continue; // a directory ferry cannot write in: treated as not shared
    }
    try {
      for (const d of list) {
        const there = await target.call('file.read', { path: join(dirname(d.targetPath), marker) }).catch(() => undefined);
        if (there?.text === token && (await target.call('file.stat', { path: d.targetPath })).exists) shared.add(d.path);
      }
    } finally {
      await source.call('file.remove', { path: join(dir, marker) }).catch(() => undefined);
    }
  }
  return shared;
}
