/**
 * Attaches a stopped guest's disk on this host so its filesystems can be
 * read or edited: raw files and block devices directly, every other format
 * (qcow2, vmdk...) through a qemu-storage-daemon FUSE export that shows it
 * as a raw file. Partitions become loop devices at their offsets, which
 * needs neither device-mapper (kpartx) nor the nbd module.
 */
import { access, constants, stat } from 'node:fs/promises';
import { FerryError, messageOf } from '../util/errors.js';
import { run } from '../util/exec.js';
import { exportAsRaw } from '../storage/fuse-export.js';
import { processesHolding } from '../storage/usage.js';
import { placeLogicalVolume, readVolumeGroups, type LvIdentity, type VolumeGroup } from '../storage/lvm-layout.js';
import { readPartitionTable, type Partition, type PartitionTable } from './partitions.js';

export interface Filesystem {
  /** Partition number; 0 for a disk without a partition table. For an LV: the partition of its PV. */
  partition: number;
  /** Set when the filesystem is on an LVM logical volume (mapped as its own loop device). */
  lv?: LvIdentity;
  device: string;
  type?: string;
  uuid?: string;
  label?: string;
  partUuid?: string;
  offset: number;
  size: number;
}

export interface AttachedImage {
  image: string;
  format: string;
  virtualSize: number;
  /** Raw view of the disk: the file itself, the block device or the FUSE export. */
  rawPath: string;
  table: PartitionTable;
  filesystems: Filesystem[];
  /** LVM volume groups on the disk's PVs, and why each LV that is not in `filesystems` could not be mapped. */
  lvm: AttachedLvm;
  writable: boolean;
  detach(): Promise<void>;
}

export interface AttachedLvm {
  volumeGroups: VolumeGroup[];
  /** "VG/LV" -> why it has no loop device. */
  unmapped: Map<string, string>;
  /** Why the volume groups could not be read (LVM tools missing or failing). */
  error?: string;
}

export interface AttachOptions {
  writable: boolean;
}

interface QemuImgInfo {
  format: string;
  'virtual-size': number;
}

/** Refuses images a running process holds open, and read-only images for writing. */
async function checkImageUsable(image: string, writable: boolean): Promise<void> {
  try {
    await stat(image);
  } catch {
    throw new FerryError('NOT_FOUND', `Cannot open disk "${image}": file not found`, { hint: "give the path of the stopped guest's disk image or block device" });
  }
  const holders = await processesHolding(image);
  if (holders.length > 0) {
    const h = holders[0]!;
    throw new FerryError('IN_USE', `Cannot open disk "${image}": process ${h.pid} (${h.command.slice(0, 80)}) holds it open`, {
      hint: 'shut the guest down first; ferry only inspects and fixes stopped guests',
      details: { holders },
    });
  }
  if (writable) {
    const st = await stat(image);
    try {
      // root passes access(W_OK) on any file; a file nobody may write is read-only by intent.
      if (st.isFile() && (st.mode & 0o222) === 0) throw new Error('no write permission bits');
      await access(image, constants.W_OK);
    } catch {
      throw new FerryError('READ_ONLY', `Cannot fix disk "${image}": it is not writable`, {
        hint: 'make the image writable (chmod u+w, or a writable copy) or run "ferry guest inspect" to only read it',
      });
    }
  }
}

async function imageInfo(image: string): Promise<QemuImgInfo> {
  const r = await run('qemu-img', ['info', '--output=json', '-U', image], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('BAD_FORMAT', `Cannot read disk "${image}": ${r.stderr.trim().split('\n').pop() ?? 'qemu-img cannot read it'}`, {
      hint: 'give a raw, qcow2 (or other qemu-img format) image, or a block device',
    });
  }
  return JSON.parse(r.stdout) as QemuImgInfo;
}

async function losetup(backing: string, offset: number, size: number, writable: boolean): Promise<string> {
  const args = ['-f', '--show', '--offset', String(offset), '--sizelimit', String(size)];
  if (!writable) args.push('-r');
  const r = await run('losetup', [...args, backing]);
  return r.stdout.trim();
}

async function probe(device: string): Promise<Record<string, string>> {
  const r = await run('blkid', ['-p', '-o', 'export', device], { allowFailure: true });
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/**
 * Gives every single-run linear LV on the disk's PVs its own loop device on
 * the raw disk (not on the PV's loop, so detaching needs no order) and adds
 * it to `filesystems`.
 */
async function mapLogicalVolumes(rawPath: string, filesystems: Filesystem[], writable: boolean, cleanups: (() => Promise<void>)[]): Promise<AttachedLvm> {
  const pvs = filesystems.filter((f) => f.type === 'LVM2_member');
  const lvm: AttachedLvm = { volumeGroups: [], unmapped: new Map() };
  if (pvs.length === 0) return lvm;
  try {
    lvm.volumeGroups = await readVolumeGroups(pvs.map((f) => f.device));
  } catch (e) {
    lvm.error = messageOf(e);
    return lvm;
  }
  for (const vg of lvm.volumeGroups) {
    for (const lv of vg.lvs) {
      const place = placeLogicalVolume(vg, lv);
      const pv = place.ok ? pvs.find((f) => f.device === place.pv.device) : undefined;
      if (!place.ok || !pv) {
        lvm.unmapped.set(`${vg.name}/${lv.name}`, place.ok ? 'its physical volume is not one ferry attached' : place.reason);
        continue;
      }
      const offset = pv.offset + place.offset;
      const device = await losetup(rawPath, offset, place.size, writable);
      cleanups.push(async () => void (await run('losetup', ['-d', device], { allowFailure: true })));
      const tags = await probe(device);
      filesystems.push({
        partition: pv.partition,
        lv: { vg: vg.name, name: lv.name, uuid: lv.uuid, vgUuid: vg.uuid },
        device,
        type: tags.TYPE,
        uuid: tags.UUID,
        label: tags.LABEL,
        offset,
        size: place.size,
      });
    }
  }
  return lvm;
}

export async function attachImage(image: string, options: AttachOptions): Promise<AttachedImage> {
  await checkImageUsable(image, options.writable);
  const st = await stat(image);
  const isBlock = st.isBlockDevice();
  const info = isBlock ? { format: 'raw', 'virtual-size': 0 } : await imageInfo(image);
  const cleanups: (() => Promise<void>)[] = [];
  const detach = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    let rawPath = image;
    if (info.format !== 'raw') {
      const exp = await exportAsRaw(image, info.format, options.writable);
      cleanups.push(() => exp.close());
      rawPath = exp.rawPath;
    }
    const table = await readPartitionTable(rawPath);
    const size = isBlock ? 0 : (await stat(rawPath)).size;
    const regions: Partition[] = table.kind === 'none' ? [{ number: 0, offset: 0, size, type: '', bootable: false }] : table.partitions;
    const filesystems: Filesystem[] = [];
    for (const p of regions) {
      const device = p.number === 0 && isBlock ? image : await losetup(rawPath, p.offset, p.size, options.writable);
      if (device !== image) cleanups.push(async () => void (await run('losetup', ['-d', device], { allowFailure: true })));
      const tags = await probe(device);
      filesystems.push({ partition: p.number, device, type: tags.TYPE, uuid: tags.UUID, label: tags.LABEL, partUuid: p.partUuid, offset: p.offset, size: p.size });
    }
    const lvm = await mapLogicalVolumes(rawPath, filesystems, options.writable, cleanups);
    if (!filesystems.some((f) => f.type)) {
      throw new FerryError('BAD_FORMAT', `Cannot read disk "${image}": no partition table and no filesystem found (format ${info.format})`, {
        hint: "check that this is the guest's whole disk in a format qemu-img knows (raw, qcow2...)",
      });
    }
    return { image, format: info.format, virtualSize: info['virtual-size'] || size, rawPath, table, filesystems, lvm, writable: options.writable, detach };
  } catch (e) {
    await detach();
    throw e;
  }
}
