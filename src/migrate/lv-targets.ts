/**
 * Target LVs: a source disk that is an LVM logical volume gets one of its
 * size on the target, in the volume group --create-lv names or, without it,
 * in a volume group of the same name there. The plan asks both hosts; this
 * file decides.
 */
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { formatMiB } from '../util/units.js';
import type { VmDisk } from '../drivers/driver.js';

/** What the hosts said about one disk, for `chooseLvTarget`. */
export interface LvFacts {
  disk: VmDisk;
  /** The source's LV at the disk's path, as its LVM reports it; undefined: not an LV. */
  sourceLv?: { vg: string; lv: string; sizeBytes: number };
  /** --create-lv VG. */
  createLv?: string;
  targetHost: string;
  /** Free bytes in the chosen VG on the target (--create-lv's, else the source's VG name); undefined: no such VG. */
  targetVgFree?: number;
  /** The target's volume groups, for the hints. */
  targetVgs: readonly string[];
  /** The target already has an LV of that name in that VG. */
  targetLvExists: boolean;
  /** Something (an active LV, a device) already is at the target path. */
  targetPathExists: boolean;
  /** An interrupted move of this VM made that LV: continue into it. */
  resumable: boolean;
}

/** How the disk's target is made: a new LV, one an earlier run made, or not an LV ferry makes (the plan's other rules apply). */
export type LvChoice = { kind: 'create' | 'resume'; vg: string; lv: string; sizeBytes: number } | { kind: 'none' };

/** The decision, from what the hosts said: a new LV, or not ferry's to make; refused with the flag that gets past it. */
export function chooseLvTarget(f: LvFacts): LvChoice {
  const src = f.sourceLv;
  if (!src) return { kind: 'none' };
  const vg = f.createLv ?? src.vg;
  const path = `/dev/${vg}/${src.lv}`;
  const theirs = f.targetVgs.length ? `its volume groups: ${f.targetVgs.join(', ')}` : 'it has no volume group';
  if (f.targetVgFree === undefined) {
    if (f.createLv !== undefined) {
      throw new FerryError('NOT_FOUND', `--create-lv ${vg}: host "${f.targetHost}" has no volume group "${vg}"`, {
        hint: `${theirs}; name one of them with --create-lv, or put the disk elsewhere with --disk-map ${f.disk.path}=DST`,
      });
    }
    // A device already there (made by hand): written into, as any block device target.
    if (f.targetPathExists) return { kind: 'none' };
    throw new FerryError('NOT_FOUND', `Disk "${f.disk.path}" is a logical volume and host "${f.targetHost}" has no volume group "${src.vg}" to make it in`, {
      hint: `pass --create-lv VG to make it in a volume group of "${f.targetHost}" (${theirs}), or --disk-map ${f.disk.path}=DST`,
    });
  }
  const sizeBytes = Math.max(src.sizeBytes, f.disk.virtualSize);
  if (f.targetLvExists) {
    if (f.resumable) return { kind: 'resume', vg, lv: src.lv, sizeBytes };
    // An active LV made by someone else: written into like any device (never removed), as before.
    if (f.targetPathExists) return { kind: 'none' };
    throw new FerryError('TARGET_EXISTS', `Logical volume "${vg}/${src.lv}" already exists on "${f.targetHost}"`, {
      hint: `ferry does not overwrite it: remove it (lvremove ${vg}/${src.lv}), activate it to write into it, or put the disk elsewhere with --disk-map ${f.disk.path}=DST`,
    });
  }
  if (f.targetPathExists) {
    throw new FerryError('TARGET_EXISTS', `Target "${path}" on "${f.targetHost}" exists but is no logical volume of "${vg}"`, {
      hint: `remove it, or put the disk elsewhere with --disk-map ${f.disk.path}=DST`,
    });
  }
  if (f.targetVgFree < sizeBytes) {
    throw new FerryError('NO_SPACE', `Volume group "${vg}" on "${f.targetHost}" has ${formatMiB(f.targetVgFree)} MiB free; disk "${f.disk.path}" needs ${formatMiB(sizeBytes)} MiB`, {
      hint: `free space in it, name another with --create-lv VG, or put the disk elsewhere with --disk-map ${f.disk.path}=DST`,
    });
  }
  return { kind: 'create', vg, lv: src.lv, sizeBytes };
}

/** Asks the hosts about a disk that may be an LV, and decides (see chooseLvTarget). */
export async function planLvTarget(disk: VmDisk, source: AgentClient, target: AgentClient, options: { createLv?: string; resumable?: ReadonlySet<string> }): Promise<LvChoice> {
  // Confirmed by the source's LVM, not by the path alone.
  const sourceLv = (await source.call('volume.lv', { path: disk.path })) ?? undefined;
  if (!sourceLv) return { kind: 'none' };
  const vg = options.createLv ?? sourceLv.vg;
  const path = `/dev/${vg}/${sourceLv.lv}`;
  const [{ freeBytes, names }, targetLv, st] = await Promise.all([target.call('volume.vg', { vg }), target.call('volume.lv', { path }), target.call('file.stat', { path })]);
  return chooseLvTarget({
    disk,
    sourceLv,
    createLv: options.createLv,
    targetHost: target.host.name,
    targetVgFree: freeBytes ?? undefined,
    targetVgs: names,
    targetLvExists: targetLv !== null,
    targetPathExists: st.exists,
    resumable: options.resumable?.has(path) ?? false,
  });
}
