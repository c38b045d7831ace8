/**
 * How a configuration file names a block device, and whether that name still
 * finds the device after the disk moves to another hypervisor's bus.
 * UUID=, LABEL=, PARTUUID= and LVM paths survive; /dev/xvda1, /dev/hda1,
 * /dev/sda1, /dev/disk/by-path and by-id name the bus or the controller and
 * do not.
 */
export type DeviceNameKind =
  'uuid' | 'label' | 'partuuid' | 'partlabel' | 'by-uuid' | 'by-label' | 'by-partuuid' | 'by-id' | 'by-path' | 'lvm' | 'md' | 'mapper' | 'kernel' | 'pseudo' | 'network' | 'other';

export interface DeviceName {
  kind: DeviceNameKind;
  /** The name as written. */
  spec: string;
  /** For kind 'kernel': the disk (xvda, sda, vda, hda, nvme0n1, cciss/c0d0). */
  disk?: string;
  /** For kind 'kernel': the partition number, absent for a whole disk. */
  partition?: number;
  /** Whether the name still finds the device after a move to the target. */
  survives: boolean;
  why: string;
}

/** Kernel names the KVM virtio target gives disks: vda, vdb... */
export interface TargetNaming {
  /** Prefix of the target's disk names, e.g. "vd" for virtio-blk, "sd" for virtio-scsi. */
  diskPrefix: string;
}

const KERNEL_DISK = /^\/dev\/(xvd[a-z]+|[hsv]d[a-z]+)(\d+)?$/;
const NVME_DISK = /^\/dev\/(nvme\d+n\d+)(?:p(\d+))?$/;
const CCISS_DISK = /^\/dev\/(cciss\/c\d+d\d+)(?:p(\d+))?$/;

export function classifyDeviceName(spec: string, target: TargetNaming = { diskPrefix: 'vd' }): DeviceName {
  const s = spec.trim();
  const upper = s.toUpperCase();
  const tagged = (kind: DeviceNameKind, why: string): DeviceName => ({ kind, spec: s, survives: true, why });
  if (upper.startsWith('UUID=')) return tagged('uuid', 'filesystem UUID does not depend on the bus');
  if (upper.startsWith('LABEL=')) return tagged('label', 'filesystem label does not depend on the bus');
  if (upper.startsWith('PARTUUID=')) return tagged('partuuid', 'partition UUID does not depend on the bus');
  if (upper.startsWith('PARTLABEL=')) return tagged('partlabel', 'partition label does not depend on the bus');
  if (s.startsWith('/dev/disk/by-uuid/')) return tagged('by-uuid', 'filesystem UUID does not depend on the bus');
  if (s.startsWith('/dev/disk/by-label/')) return tagged('by-label', 'filesystem label does not depend on the bus');
  if (s.startsWith('/dev/disk/by-partuuid/')) return tagged('by-partuuid', 'partition UUID does not depend on the bus');
  // udev's device-mapper rules make these from the LV's (or LUKS volume's) own name and UUID.
  if (s.startsWith('/dev/disk/by-id/dm-name-') || s.startsWith('/dev/disk/by-id/dm-uuid-')) return tagged('mapper', 'device-mapper names (LVM, LUKS) do not depend on the bus');
  if (s.startsWith('/dev/disk/by-path/')) {
    return { kind: 'by-path', spec: s, survives: false, why: 'names the controller and slot, which change with the hypervisor' };
  }
  if (s.startsWith('/dev/disk/by-id/')) {
    return { kind: 'by-id', spec: s, survives: false, why: 'names the disk model and serial, which the new virtual disk does not have' };
  }
  if (s.startsWith('/dev/mapper/')) return tagged('mapper', 'device-mapper names (LVM, LUKS) do not depend on the bus');
  if (/^\/dev\/md\d+|^\/dev\/md\//.test(s)) return tagged('md', 'software RAID is assembled from its superblocks');
  const kernel = KERNEL_DISK.exec(s) ?? NVME_DISK.exec(s) ?? CCISS_DISK.exec(s);
  if (kernel) {
    const disk = kernel[1]!;
    const partition = kernel[2] === undefined ? undefined : Number(kernel[2]);
    const survives = disk.startsWith(target.diskPrefix) && /^[a-z]+$/.test(disk.slice(target.diskPrefix.length));
    return {
      kind: 'kernel',
      spec: s,
      disk,
      partition,
      survives,
      why: survives ? `the target names its disks ${target.diskPrefix}*` : `the target names its disks ${target.diskPrefix}*, not ${disk.replace(/[a-z]$/, '*')}`,
    };
  }
  if (/^\/dev\/[^/]+\/[^/]+$/.test(s) && !s.startsWith('/dev/disk/')) return tagged('lvm', 'LVM names do not depend on the bus');
  if (/^[\w.-]+:\/|^\/\/|^[\w.-]+:[^/]*$/.test(s) && !s.startsWith('/')) {
    return { kind: 'network', spec: s, survives: true, why: 'network filesystem' };
  }
  if (!s.startsWith('/')) return { kind: 'pseudo', spec: s, survives: true, why: 'not a block device' };
  return { kind: 'other', spec: s, survives: true, why: 'not a name ferry knows to depend on the bus' };
}

/** The target's kernel name for the same disk position: xvda1 -> vda1, hdb2 -> vdb2. */
export function targetKernelName(name: DeviceName, target: TargetNaming = { diskPrefix: 'vd' }): string | undefined {
  if (name.kind !== 'kernel' || !name.disk) return undefined;
  const m = /^(?:xvd|[hsv]d)([a-z]+)$/.exec(name.disk);
  if (!m) return undefined;
  return `/dev/${target.diskPrefix}${m[1]}${name.partition ?? ''}`;
}
