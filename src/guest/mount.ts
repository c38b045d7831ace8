/**
 * Mounts an attached guest's filesystems as the guest would: finds the root
 * filesystem, then mounts what its /etc/fstab lists (so /boot, /usr, /var
 * are where the guest expects them). Read-only mounts do not replay the
 * journal, so inspecting changes nothing on the disk.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { parseFstab, type FstabEntry } from './fstab.js';
import type { AttachedImage, Filesystem } from './image.js';
import { lvForDevicePath, type LvIdentity } from '../storage/lvm-layout.js';

export interface MountedGuest {
  /** Where the guest's / is mounted on this host. */
  root: string;
  rootFs: Filesystem;
  /** Mount point in the guest -> filesystem. */
  mounts: { mountPoint: string; fs: Filesystem }[];
  unmount(): Promise<void>;
}

const LINUX_FS = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'jfs', 'reiserfs']);

function mountOptions(type: string, writable: boolean): string {
  if (writable) return 'rw';
  if (type.startsWith('ext3') || type === 'ext4') return 'ro,noload';
  if (type === 'xfs') return 'ro,norecovery';
  return 'ro';
}

async function mountFs(fs: Filesystem, at: string, writable: boolean): Promise<void> {
  await run('mount', ['-t', fs.type!, '-o', mountOptions(fs.type!, writable), fs.device, at]);
}

/** The filesystem an fstab line names, matched by UUID, label, PARTUUID, partition number or LVM name. */
export function resolveFstabDevice(entry: Pick<FstabEntry, 'spec' | 'device'>, filesystems: readonly Filesystem[]): Filesystem | undefined {
  const spec = entry.spec;
  if (entry.device.kind === 'lvm' || entry.device.kind === 'mapper' || spec.startsWith('/dev/disk/by-id/dm-')) {
    const onLvs = filesystems.filter((f): f is Filesystem & { lv: LvIdentity } => f.lv !== undefined);
    return lvForDevicePath(
      spec,
      onLvs.map((f) => ({ ...f.lv, fs: f })),
    )?.fs;
  }
  // Partition numbers name partitions, never the LVs inside them.
  const partitions = filesystems.filter((f) => !f.lv);
  const value = spec.includes('=') ? spec.slice(spec.indexOf('=') + 1).replace(/^"|"$/g, '') : spec.replace(/^.*\//, '');
  switch (entry.device.kind) {
    case 'uuid':
    case 'by-uuid':
      return filesystems.find((f) => f.uuid?.toLowerCase() === value.toLowerCase());
    case 'label':
    case 'by-label':
      return filesystems.find((f) => f.label === value);
    case 'partuuid':
    case 'by-partuuid':
      return filesystems.find((f) => f.partUuid?.toLowerCase() === value.toLowerCase());
    case 'kernel':
      return entry.device.disk?.endsWith('a') || entry.device.disk?.startsWith('nvme0n1') || entry.device.disk?.startsWith('cciss')
        ? partitions.find((f) => f.partition === (entry.device.partition ?? 0))
        : undefined;
    default: {
      const m = /-part(\d+)$/.exec(spec);
      return m ? partitions.find((f) => f.partition === Number(m[1])) : undefined;
    }
  }
}

export async function mountGuest(image: AttachedImage, writable: boolean): Promise<MountedGuest> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-root-'));
  const mounted: string[] = [];
  const unmount = async (): Promise<void> => {
    for (const m of mounted.reverse()) await run('umount', [m], { allowFailure: true });
    mounted.length = 0;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let rootFs: Filesystem | undefined;
    for (const fs of image.filesystems.filter((f) => f.type && LINUX_FS.has(f.type))) {
      const r = await run('mount', ['-t', fs.type!, '-o', mountOptions(fs.type!, false), fs.device, dir], { allowFailure: true });
      if (r.exitCode !== 0) continue;
      const isRoot = existsSync(join(dir, 'etc/fstab')) || existsSync(join(dir, 'etc/os-release'));
      await run('umount', [dir]);
      if (isRoot) {
        rootFs = fs;
        break;
      }
    }
    if (!rootFs) {
      const seen = image.filesystems.map((f) => `${f.lv ? `${f.lv.vg}/${f.lv.name}` : f.partition}:${f.type ?? 'unknown'}`).join(', ');
      const hasLvm = image.filesystems.some((f) => f.type === 'LVM2_member');
      const unmapped = [...image.lvm.unmapped].map(([lv, why]) => `${lv} (${why})`).join(', ');
      throw new FerryError('NOT_FOUND', `Cannot find a Linux root filesystem on "${image.image}" (partitions: ${seen})`, {
        hint: image.lvm.error
          ? `the disk has LVM physical volumes whose volume groups ferry could not read (${image.lvm.error}); install the lvm2 tools`
          : unmapped
            ? `the root may be on an LVM logical volume ferry cannot map without device-mapper: ${unmapped}; inspect it on a host with device-mapper`
            : hasLvm
              ? "the disk's LVM volume groups hold no Linux root either; give the disk that holds the guest's / (another PV of the volume group?)"
              : "give the disk that holds the guest's / (with /etc/fstab); data disks need no fixing",
      });
    }
    await mountFs(rootFs, dir, writable);
    mounted.push(dir);
    const mounts = [{ mountPoint: '/', fs: rootFs }];
    const fstab = parseFstab(await readFile(join(dir, 'etc/fstab'), 'utf8').catch(() => ''));
    const wanted = fstab.filter((e) => e.mountPoint.startsWith('/') && e.mountPoint !== '/' && !e.options.includes('noauto')).sort((a, b) => a.mountPoint.length - b.mountPoint.length);
    for (const e of wanted) {
      const fs = resolveFstabDevice(e, image.filesystems);
      if (!fs || !fs.type || (!LINUX_FS.has(fs.type) && fs.type !== 'vfat') || fs === rootFs) continue;
      const at = join(dir, e.mountPoint);
      if (!existsSync(at)) continue;
      const r = await run('mount', ['-t', fs.type, '-o', mountOptions(fs.type, writable), fs.device, at], { allowFailure: true });
      if (r.exitCode === 0) {
        mounted.push(at);
        mounts.push({ mountPoint: e.mountPoint, fs });
      }
    }
    return { root: dir, rootFs, mounts, unmount };
  } catch (e) {
    await unmount();
    throw e;
  }
}
