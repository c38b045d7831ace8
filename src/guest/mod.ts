/**
 * Offline guest inspection and fixes: the public surface of src/guest.
 * inspectImage reads a stopped guest's disk and lists what will break on the
 * target; fixImage applies the fixes.
 */
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';
import { ChangeLog, type Change } from './change-log.js';
import { FIX_OPERATIONS } from './fixes.js';
import { attachImage, type AttachedImage, type Filesystem } from './image.js';
import { readGuestFiles, type GuestFiles } from './inspect.js';
import { describeLvm, type LvmReport } from './lvm-report.js';
import { mountGuest } from './mount.js';
import { findProblems, type Problem } from './problems.js';
import { findTarget } from './target.js';

export type { Problem } from './problems.js';
export type { Change } from './change-log.js';
export type { LvmReport, LogicalVolumeReport, VolumeGroupReport } from './lvm-report.js';
export { FIX_OPERATIONS } from './fixes.js';

export interface GuestReport extends GuestFiles {
  image: string;
  format: string;
  target: string;
  partitionTable: AttachedImage['table'];
  filesystems: (Omit<Filesystem, 'device'> & { mountPoint?: string })[];
  lvm: LvmReport;
  problems: Problem[];
  durationMs: number;
}

export interface InspectOptions {
  target?: string;
  /** MACs the guest's NICs will have on the target. */
  targetMacs?: string[];
}

function describeFilesystems(image: AttachedImage, mounts: { mountPoint: string; fs: Filesystem }[]): GuestReport['filesystems'] {
  return image.filesystems.map((fs) => {
    const { device: _device, ...f } = fs;
    return { ...f, mountPoint: mounts.find((m) => m.fs === fs)?.mountPoint };
  });
}

/** The same filesystem on another attachment of the disk: the same LV, or the same partition. */
function sameFilesystem(a: Filesystem, b: Filesystem): boolean {
  return a.lv || b.lv ? a.lv?.vg === b.lv?.vg && a.lv?.name === b.lv?.name : a.partition === b.partition;
}

export async function inspectImage(imagePath: string, options: InspectOptions = {}): Promise<GuestReport> {
  const started = performance.now();
  const target = findTarget(options.target ?? 'kvm-virtio');
  const image = await attachImage(imagePath, { writable: false });
  try {
    const guest = await mountGuest(image, false);
    try {
      const files = await readGuestFiles(guest.root);
      return {
        image: imagePath,
        format: image.format,
        target: target.name,
        partitionTable: image.table,
        filesystems: describeFilesystems(image, guest.mounts),
        lvm: describeLvm(image, guest.mounts),
        ...files,
        problems: findProblems(files, target, image.filesystems, options.targetMacs),
        durationMs: Math.round(performance.now() - started),
      };
    } finally {
      await guest.unmount();
    }
  } finally {
    await image.detach();
  }
}

export interface FixOptions {
  target?: string;
  dryRun?: boolean;
  /** OLD=NEW MAC pairs. */
  macs?: ReadonlyMap<string, string>;
  /** Old UUID (what the guest's files name) -> current UUID on the image. */
  uuidMap?: ReadonlyMap<string, string>;
  /** Take the old UUIDs from this image (same partition numbers). */
  restoreUuidsFrom?: string;
  /** restore: give filesystems their old UUIDs back; rewrite: point references at the new UUIDs. */
  uuidMode?: 'restore' | 'rewrite';
  /** Operation names to skip. */
  skip?: readonly string[];
}

export interface FixResult {
  image: string;
  dryRun: boolean;
  changes: Change[];
  /** Problems left after the fixes (read again from the fixed guest). */
  remaining: Problem[];
  durationMs: number;
}

/** Old -> new UUID pairs from another image with the same partitions (seed 000's case). */
async function uuidPairsFrom(from: string, image: AttachedImage): Promise<Map<string, string>> {
  const old = await attachImage(from, { writable: false });
  try {
    const pairs = new Map<string, string>();
    for (const now of image.filesystems) {
      const before = old.filesystems.find((x) => sameFilesystem(x, now));
      if (before?.uuid && now.uuid && before.uuid !== now.uuid && before.type === now.type) pairs.set(before.uuid, now.uuid);
    }
    return pairs;
  } finally {
    await old.detach();
  }
}

/** Gives filesystems their old UUIDs back, before anything is mounted. */
async function restoreUuids(image: AttachedImage, pairs: ReadonlyMap<string, string>, log: ChangeLog): Promise<void> {
  for (const [oldUuid, newUuid] of pairs) {
    const fs = image.filesystems.find((f) => f.uuid === newUuid);
    if (!fs) continue;
    const argv = fs.type?.startsWith('ext')
      ? ['tune2fs', '-f', '-U', oldUuid, fs.device]
      : fs.type === 'xfs'
        ? ['xfs_admin', '-U', oldUuid, fs.device]
        : fs.type === 'swap'
          ? ['swaplabel', '-U', oldUuid, fs.device]
          : undefined;
    const where = fs.lv ? `logical volume ${fs.lv.vg}/${fs.lv.name}` : `partition ${fs.partition}`;
    if (!argv)
      throw new FerryError('INCOMPATIBLE', `Cannot set the UUID of the ${fs.type ?? 'unknown'} filesystem on ${where}`, { hint: 'use --uuid-mode rewrite to point the guest at the new UUID instead' });
    log.operation = 'uuid-restore';
    await log.command(`${argv.join(' ')}   # ${where}: ${newUuid} -> ${oldUuid}`, async () => {
      if (fs.type?.startsWith('ext')) await run('e2fsck', ['-f', '-p', fs.device], { allowFailure: true });
      await run(argv[0]!, argv.slice(1));
    });
    if (!log.dryRun) fs.uuid = oldUuid;
  }
}

export async function fixImage(imagePath: string, options: FixOptions = {}): Promise<FixResult> {
  const started = performance.now();
  const target = findTarget(options.target ?? 'kvm-virtio');
  const dryRun = options.dryRun === true;
  const image = await attachImage(imagePath, { writable: !dryRun });
  try {
    const pairs = new Map(options.uuidMap ?? []);
    if (options.restoreUuidsFrom) for (const [oldUuid, newUuid] of await uuidPairsFrom(options.restoreUuidsFrom, image)) pairs.set(oldUuid, newUuid);
    const mode = options.uuidMode ?? 'restore';
    const preLog = new ChangeLog('/', dryRun);
    if (mode === 'restore' && pairs.size > 0) await restoreUuids(image, pairs, preLog);
    const guest = await mountGuest(image, !dryRun);
    try {
      const log = new ChangeLog(guest.root, dryRun);
      log.changes.push(...preLog.changes);
      const guestFiles = await readGuestFiles(guest.root);
      const ctx = {
        root: guest.root,
        guest: guestFiles,
        filesystems: image.filesystems,
        target,
        log,
        macMap: new Map([...(options.macs ?? [])].map(([oldMac, newMac]) => [oldMac.toLowerCase(), newMac.toLowerCase()])),
        uuidRewrites: mode === 'rewrite' ? pairs : new Map<string, string>(),
      };
      for (const op of FIX_OPERATIONS) {
        if (!op.enabledByDefault || options.skip?.includes(op.name)) continue;
        log.operation = op.name;
        await op.apply(ctx);
      }
      const after = dryRun ? guestFiles : await readGuestFiles(guest.root);
      const remaining = findProblems(after, target, image.filesystems, [...ctx.macMap.values()]).filter((p) => !(dryRun && p.operation && !options.skip?.includes(p.operation)));
      return { image: imagePath, dryRun, changes: log.changes, remaining, durationMs: Math.round(performance.now() - started) };
    } finally {
      await guest.unmount();
    }
  } finally {
    await image.detach();
  }
}
