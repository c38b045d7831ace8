/**
 * The plan of a move: for each disk, where it goes on the target, whether
 * ferry creates the image there or writes into a device that exists, and
 * whether all of it crosses or only what the top image holds. It holds for
 * every hypervisor; the checks that make it (a free path, a device large
 * enough, the same base on both hosts, room for the images) refuse with the
 * flag that gets the user past them.
 */
import { dirname } from 'node:path';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { formatMiB } from '../util/units.js';
import { cacheModeOf, type DiskPlan, type VmDisk, type VmInfo } from '../drivers/driver.js';
import { planLvTarget } from './lv-targets.js';
import { compareDisks } from './same-disk.js';
import { sharedFiles } from './shared-storage.js';

export interface PlanOptions {
  /** Source disk path -> target path; disks not named keep their path. */
  diskMap: ReadonlyMap<string, string>;
  /** Overwrite existing target images, write into a device in use, accept an unsafe cache mode. */
  force?: boolean;
  log: (message: string) => void;
  /** Target images an earlier, interrupted move made: continued into rather than refused. */
  resumable?: ReadonlySet<string>;
  /** --create-lv VG: a source disk that is an LV gets a new LV in this VG on the target (else in a VG of its own VG's name there). */
  createLv?: string;
  /** The guest runs on through the move (live, warm): a disk both hosts share then passes from one host's page cache to the other's. */
  running?: boolean;
  /**
   * The move copies read-only disks with the sync engine (cold, or a
   * hypervisor that leaves them): one whose target exists and holds the
   * same bytes is then used as it is rather than refused.
   */
  reuseIdentical?: boolean;
}

export async function planDisks(vm: VmInfo, source: AgentClient, target: AgentClient, options: PlanOptions): Promise<DiskPlan[]> {
  for (const src of options.diskMap.keys()) {
    const disk = vm.disks.find((d) => d.path === src);
    if (!disk) {
      throw new FerryError('USAGE', `--disk-map names "${src}", which is not a disk of VM "${vm.name}"`, { hint: `its disks: ${vm.disks.map((d) => d.path).join(', ')}` });
    }
    if (disk.kind === 'network') {
      throw new FerryError('USAGE', `--disk-map names network disk "${src}": it stays where it is, and the target reaches it as the source does`, { hint: 'drop it from --disk-map' });
    }
  }
  // Storage reached over the network is the same from either host: nothing to look up, make or copy.
  const local = vm.disks.filter((d) => d.kind !== 'network');
  const plans: DiskPlan[] = [];
  const needByDir = new Map<string, number>();
  // What each disk's plan reads of the hosts, asked at once beside the shared-storage probe: all of it is
  // read-only, and awaited (errors included) only where the disk needs it.
  const lookups = new Map(
    local.map((disk) => {
      const lv = options.diskMap.has(disk.path) ? Promise.resolve({ kind: 'none' as const }) : planLvTarget(disk, source, target, options);
      const st = target.call('file.stat', { path: options.diskMap.get(disk.path) ?? disk.path });
      for (const p of [lv, st]) p.catch(() => undefined);
      return [disk, { lv, st }] as const;
    }),
  );
  const shared = await sharedFiles(
    source,
    target,
    local.map((d) => ({ path: d.path, targetPath: options.diskMap.get(d.path) ?? d.path })),
  );
  for (const [index, disk] of vm.disks.entries()) {
    if (disk.kind === 'network') {
      // librbd hands a disk over between its clients itself; other protocols' clients may cache.
      if (options.running && !disk.path.startsWith('rbd://')) checkSharedCache(disk, source, target, options.force);
      options.log(`${disk.device} is a network disk (${disk.path}): both hosts reach it, it is not copied`);
      plans.push({ disk, index, targetPath: disk.path, targetFormat: disk.format, create: false, sync: 'top', shared: true });
      continue;
    }
    if (shared.has(disk.path)) {
      if (options.running) checkSharedCache(disk, source, target, options.force);
      options.log(`${disk.path} is on storage both hosts share: it is not copied`);
      // The target opens it where it sees it (a LUN may have another name there).
      plans.push({ disk, index, targetPath: options.diskMap.get(disk.path) ?? disk.path, targetFormat: disk.format, create: false, sync: 'top', shared: true });
      continue;
    }
    if (disk.cache.noFlush && !options.force) {
      throw new FerryError('UNSAFE_CACHE', `Disk "${disk.path}" uses cache=unsafe: writes the guest thinks are safe may be lost`, {
        hint: 'restart the VM with cache=none or writeback, or pass --force to migrate anyway',
      });
    }
    // --disk-map wins; else an LV gets an LV (lv-targets.ts).
    const lookup = lookups.get(disk)!;
    const lv = await lookup.lv;
    if (lv.kind !== 'none') {
      const targetPath = `/dev/${lv.vg}/${lv.lv}`;
      const targetLv = { vg: lv.vg, lv: lv.lv, sizeBytes: lv.sizeBytes };
      if (lv.kind === 'resume') options.log(`${target.host.name}:${targetPath} was made by an interrupted move of ${vm.name}: continuing into it`);
      else options.log(`${disk.path} is a logical volume: ferry makes ${target.host.name}:${targetPath} (${formatMiB(lv.sizeBytes)} MiB)`);
      // A new LV holds whatever its extents held before: everything crosses, zeros included.
      plans.push({ disk, index, targetPath, targetFormat: disk.format, create: lv.kind === 'create', resume: lv.kind === 'resume', sync: 'full', targetLv });
      continue;
    }
    const targetPath = options.diskMap.get(disk.path) ?? disk.path;
    const plan: DiskPlan = { disk, index, targetPath, targetFormat: disk.format, create: true, sync: 'full' };
    const st = await lookup.st;
    if (st.exists && st.type === 'block') {
      if ((st.size ?? 0) < disk.virtualSize) {
        throw new FerryError('TARGET_TOO_SMALL', `Target "${targetPath}" on "${target.host.name}" holds ${st.size} bytes; disk "${disk.path}" needs ${disk.virtualSize}`, {
          hint: 'map the disk to a device at least as large as the source disk (--disk-map SRC=DST)',
        });
      }
      if (!options.force) {
        const holders = await target.call('process.holding', { path: targetPath });
        if (holders.pids.length) {
          throw new FerryError('IN_USE', `Target "${targetPath}" on "${target.host.name}" is in use by process ${holders.pids.join(', ')}`, { hint: 'choose a free device with --disk-map SRC=DST' });
        }
      }
      plan.create = false;
      plan.targetDevice = true;
      plan.targetFormat = 'raw';
    } else if (st.exists && options.resumable?.has(targetPath)) {
      options.log(`${target.host.name}:${targetPath} was made by an interrupted move of ${vm.name}: continuing into it`);
      plans.push({ ...plan, create: false, resume: true });
      continue;
    } else if (st.exists) {
      const reusable = disk.readOnly && options.reuseIdentical && st.type === 'file';
      const found = reusable ? await compareDisks(disk.path, targetPath, source, target) : undefined;
      if (found?.same) {
        options.log(`${target.host.name}:${targetPath} holds the same ${found.by === 'bytes' ? 'bytes' : 'disk'} as read-only disk ${disk.path}: used as it is, not copied`);
        plans.push({ ...plan, create: false, present: true });
        continue;
      }
      if (!options.force) {
        throw new FerryError(
          'TARGET_EXISTS',
          `Target image "${targetPath}" already exists on "${target.host.name}"${found ? `, and holds another disk than ${disk.path} on "${source.host.name}"` : ''}`,
          {
            hint: 'ferry does not overwrite it: remove it, map the disk elsewhere with --disk-map SRC=DST, or pass --force to overwrite',
          },
        );
      }
      if (st.type !== 'file') throw new FerryError('TARGET_EXISTS', `Target "${targetPath}" on "${target.host.name}" is a ${st.type}`, { hint: 'map the disk to a file or block device path' });
    }
    if (plan.create) {
      const base = disk.backingChain[0];
      if (base) {
        await checkBase(disk, base.filename, source, target, options.log);
        plan.base = base;
      }
      // A new image reads as zeros: what the source's top has not allocated stays a hole, never crosses.
      plan.sync = 'top';
      const dir = dirname(targetPath);
      needByDir.set(dir, (needByDir.get(dir) ?? 0) + (disk.allocatedSize ?? disk.virtualSize));
    }
    plans.push(plan);
  }
  for (const [dir, need] of needByDir) {
    const free = await target.call('file.free', { path: dir });
    if (free.freeBytes < need) {
      throw new FerryError('NO_SPACE', `Host "${target.host.name}" has ${formatMiB(free.freeBytes)} MiB free in "${free.dir}"; the disks need about ${formatMiB(need)} MiB`, {
        hint: 'free space there or map the disks elsewhere with --disk-map SRC=DST',
      });
    }
  }
  return plans;
}

/** The base must hold the same bytes on both hosts, or the top would be read against a different disk. */
async function checkBase(disk: VmDisk, basePath: string, source: AgentClient, target: AgentClient, log: (message: string) => void): Promise<void> {
  const st = await target.call('file.stat', { path: basePath });
  if (!st.exists) {
    throw new FerryError('BACKING_MISMATCH', `Disk "${disk.path}" has backing file "${basePath}", which does not exist on "${target.host.name}"`, {
      hint: `copy the base there first ("ferry sync ${source.host.name}:${basePath} ${target.host.name}:${basePath}"); only the top image is migrated`,
    });
  }
  const base = await compareDisks(basePath, basePath, source, target);
  if (!base.same) {
    throw new FerryError('BACKING_MISMATCH', `Backing file "${basePath}" holds another disk on "${target.host.name}" than on "${source.host.name}"`, {
      hint: `the target must hold the same base image: copy it again ("ferry sync ${source.host.name}:${basePath} ${target.host.name}:${basePath}")`,
      details: { source: base.sourceSha256, target: base.targetSha256 },
    });
  }
  log(`backing file ${basePath} holds the same ${base.by === 'bytes' ? 'bytes' : 'disk'} on both hosts: only the top of ${disk.path} crosses`);
}

/** What a target image is, for the record that lets whoever settles remove it: a file, or an LV ferry made. */
export interface TargetClaim {
  path: string;
  lv?: { vg: string; lv: string };
}

/** Creates the target images the plan says ferry makes, each listed first where the driver keeps its record. */
export async function createTargetImages(plans: readonly DiskPlan[], target: AgentClient, claim: (claim: TargetClaim) => Promise<void>, created: (plan: DiskPlan) => void): Promise<void> {
  for (const p of plans) {
    if (!p.create) continue;
    await claim({ path: p.targetPath, lv: p.targetLv && { vg: p.targetLv.vg, lv: p.targetLv.lv } });
    await createTargetImage(p, target);
    created(p);
  }
}

/** Makes one planned target image: an image file, or an LV (activated at /dev/VG/LV, formatted when the disk's format is not raw). */
export async function createTargetImage(p: DiskPlan, target: AgentClient): Promise<void> {
  if (p.targetLv) {
    await target.call('volume.createLv', { vg: p.targetLv.vg, lv: p.targetLv.lv, sizeBytes: p.targetLv.sizeBytes });
    if (p.targetFormat === 'raw') return;
  }
  await target.call('image.create', { path: p.targetPath, format: p.targetFormat, sizeBytes: p.disk.virtualSize, backingFile: p.base?.filename, backingFormat: p.base?.format });
}

/** The journal's line for a target image ferry made: `ferry recover` and a later run (resume) read it. */
export function createdEntry(p: DiskPlan, host: string): Record<string, unknown> {
  return { host, path: p.targetPath, format: p.targetFormat, backing: p.base?.filename, lv: p.targetLv && { vg: p.targetLv.vg, lv: p.targetLv.lv } };
}

/**
 * A running guest's disk on shared storage must bypass the hosts' page
 * caches (cache=none or directsync), as libvirt requires for a migration
 * without storage copy: once the guest runs on the target, that host's
 * cache may still hold pages of the image older than what the source wrote.
 * A cluster filesystem keeps the caches coherent; --force says it does.
 */
function checkSharedCache(disk: VmDisk, source: AgentClient, target: AgentClient, force?: boolean): void {
  if (disk.cache.direct || disk.readOnly || force) return;
  const shared =
    disk.kind === 'network'
      ? `is reached over the network by "${source.host.name}" and "${target.host.name}" alike, through its client's cache`
      : `is on storage "${source.host.name}" and "${target.host.name}" share and goes through the host's page cache`;
  throw new FerryError('UNSAFE_CACHE', `Disk "${disk.path}" ${shared} (cache=${cacheModeOf(disk)}): "${target.host.name}" could read data older than what the guest wrote on "${source.host.name}"`, {
    hint: 'give the disk cache=none (virsh edit, or -drive cache=none) and restart the VM, move it with --mode cold, or pass --force if a cluster filesystem (GFS2, OCFS2, CephFS) keeps the caches coherent',
  });
}
