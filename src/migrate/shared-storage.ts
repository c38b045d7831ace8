/**
 * Whether a disk is already on the target: the same file, seen by both
 * hosts through shared storage (an NFS or GlusterFS mount, a cluster
 * filesystem on an iSCSI LUN), or the same block device (a LUN, a multipath
 * map, an LV of a shared VG). Equal paths prove nothing, since two hosts
 * with local disks use the same paths.
 *
 * A file: the source's agent leaves a marker with a random token beside
 * it, and the file is shared when the target's agent reads that token
 * beside the same file name there. A block device: both agents name it by
 * what their kernels read from the device itself (WWID, device-mapper UUID,
 * serial), which must agree, as must its size; a loop device is the same
 * when its backing file is, told as a file is.
 */
import { randomUUID } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { AgentClient } from '../hosts/agent-client.js';

interface DiskPair {
  path: string;
  targetPath: string;
}

/** For each source path, whether the target sees the same file or device at `targetPath`. */
export async function sharedFiles(source: AgentClient, target: AgentClient, disks: readonly DiskPair[]): Promise<Set<string>> {
  const shared = new Set<string>();
  const files: DiskPair[] = [];
  // A loop device's backing files, told apart as files are: backing file -> the disks on it.
  const loops = new Map<string, { backing: DiskPair; disks: string[] }>();
  // Read-only questions, asked at once.
  const kinds = await Promise.all(disks.map((d) => source.call('file.stat', { path: d.path }).then((st) => st.type)));
  const devices = await Promise.all(
    disks.map(async (d, i) => (kinds[i] === 'block' ? Promise.all([source.call('volume.identity', { path: d.path }), target.call('volume.identity', { path: d.targetPath })]) : undefined)),
  );
  for (const [i, d] of disks.entries()) {
    if (kinds[i] === 'file') files.push(d);
    const [here, there] = devices[i] ?? [];
    if (!here || !there || here.sizeBytes !== there.sizeBytes || here.id !== there.id) continue;
    if (here.loopBackingFile && there.loopBackingFile) {
      const key = `${here.loopBackingFile}\0${there.loopBackingFile}`;
      const entry = loops.get(key) ?? { backing: { path: here.loopBackingFile, targetPath: there.loopBackingFile }, disks: [] };
      entry.disks.push(d.path);
      loops.set(key, entry);
    } else if (here.id && !here.loopBackingFile && !there.loopBackingFile) {
      shared.add(d.path);
    }
  }
  // A loop device over a device, not a file, is not told apart this way.
  const backings = [...loops.values()].map((l) => l.backing);
  const backingKinds = await Promise.all(backings.map((b) => source.call('file.stat', { path: b.path }).then((st) => st.type)));
  for (const path of await sameFiles(source, target, [...files, ...backings.filter((_, i) => backingKinds[i] === 'file')])) {
    if (files.some((f) => f.path === path)) shared.add(path);
    for (const l of loops.values()) if (l.backing.path === path) for (const disk of l.disks) shared.add(disk);
  }
  return shared;
}

/** The source paths of `pairs` whose target path is the very same file: one marker per source directory. */
async function sameFiles(source: AgentClient, target: AgentClient, pairs: readonly DiskPair[]): Promise<Set<string>> {
  const same = new Set<string>();
  const byDir = new Map<string, DiskPair[]>();
  for (const d of pairs) {
    if (basename(d.path) !== basename(d.targetPath)) continue; // another name there is another file
    const list = byDir.get(dirname(d.path)) ?? [];
    list.push(d);
    byDir.set(dirname(d.path), list);
  }
  for (const [dir, list] of byDir) {
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
        if (there?.text === token && (await target.call('file.stat', { path: d.targetPath })).exists) same.add(d.path);
      }
    } finally {
      await source.call('file.remove', { path: join(dir, marker) }).catch(() => undefined);
    }
  }
  return same;
}
