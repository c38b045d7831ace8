/** The LVM part of `ferry guest inspect`: volume groups, their LVs and whether ferry could map each. */
import type { AttachedImage, Filesystem } from './image.js';
import { mapperName, type VolumeGroup } from '../storage/lvm-layout.js';

export interface LvmReport {
  /** Partition numbers of the disk's LVM physical volumes. */
  physicalVolumes: number[];
  note?: string;
  volumeGroups: VolumeGroupReport[];
}

export interface VolumeGroupReport extends Pick<VolumeGroup, 'name' | 'uuid' | 'size' | 'free' | 'extentSize' | 'missingPvs'> {
  physicalVolumes: { partition?: number; uuid: string; peStart: number; size: number }[];
  logicalVolumes: LogicalVolumeReport[];
}

export interface LogicalVolumeReport {
  name: string;
  /** The names the guest can use for it; both survive a move. */
  path: string;
  mapperPath: string;
  uuid: string;
  size: number;
  segments: { type: string; startExtent: number; extents: number; ranges: { partition?: number; first: number; last: number }[] }[];
  /** Whether ferry gave it a loop device, so its filesystem was probed (and mounted if the guest mounts it). */
  mapped: boolean;
  notMappedBecause?: string;
  filesystem?: { type?: string; uuid?: string; label?: string; mountPoint?: string };
}

export function describeLvm(image: AttachedImage, mounts: readonly { mountPoint: string; fs: Filesystem }[]): LvmReport {
  const pvFilesystems = image.filesystems.filter((f) => f.type === 'LVM2_member');
  const physicalVolumes = pvFilesystems.map((f) => f.partition);
  const partitionOf = (device: string): number | undefined => pvFilesystems.find((f) => f.device === device)?.partition;
  const volumeGroups = image.lvm.volumeGroups.map((vg): VolumeGroupReport => ({
    name: vg.name,
    uuid: vg.uuid,
    size: vg.size,
    free: vg.free,
    extentSize: vg.extentSize,
    missingPvs: vg.missingPvs,
    physicalVolumes: vg.pvs.map((p) => ({ partition: partitionOf(p.device), uuid: p.uuid, peStart: p.peStart, size: p.size })),
    logicalVolumes: vg.lvs.map((lv): LogicalVolumeReport => {
      const fs = image.filesystems.find((f) => f.lv?.vg === vg.name && f.lv.name === lv.name);
      const why = image.lvm.unmapped.get(`${vg.name}/${lv.name}`);
      return {
        name: lv.name,
        path: `/dev/${vg.name}/${lv.name}`,
        mapperPath: `/dev/mapper/${mapperName(vg.name, lv.name)}`,
        uuid: lv.uuid,
        size: lv.size,
        segments: lv.segments.map((s) => ({ ...s, ranges: s.ranges.map((r) => ({ partition: partitionOf(r.device), first: r.first, last: r.last })) })),
        mapped: fs !== undefined,
        ...(why ? { notMappedBecause: why } : {}),
        ...(fs ? { filesystem: { type: fs.type, uuid: fs.uuid, label: fs.label, mountPoint: mounts.find((m) => m.fs === fs)?.mountPoint } } : {}),
      };
    }),
  }));
  let note: string | undefined;
  if (image.lvm.error) note = `LVM physical volumes found, but their volume groups could not be read: ${image.lvm.error}`;
  else if (image.lvm.unmapped.size > 0) note = `${image.lvm.unmapped.size} logical volume(s) not mapped (no device-mapper on this host): ${[...image.lvm.unmapped.keys()].join(', ')}`;
  else if (physicalVolumes.length > 0 && volumeGroups.length === 0) note = 'LVM physical volumes found that belong to no volume group on this disk';
  return { physicalVolumes, ...(note ? { note } : {}), volumeGroups };
}
