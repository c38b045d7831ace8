/** LVM volumes on the agent's host: what a path is, room in a volume group, and the LVs a migration makes and removes. */
import { blockIdentity, type BlockIdentity } from '../../storage/block-identity.js';
import { activateLv, createLv, describeLv, removeLv, volumeGroupFree, volumeGroupNames, type LvInfo } from '../../storage/lvm.js';

export const volumeHandlers = {
  /** What names the block device at `path` beyond this host (WWID, device-mapper UUID, serial, a loop device's file), or null for no block device. */
  'volume.identity': async (p: { path: string }): Promise<BlockIdentity | null> => blockIdentity(p.path),
  /** The LV at `path` as LVM knows it (so not merely a path that looks like one), or null. */
  'volume.lv': async (p: { path: string }): Promise<LvInfo | null> => (await describeLv(p.path)) ?? null,
  /** Free bytes in volume group `vg`, or null when the host has none of that name; `names`: the host's VGs. */
  'volume.vg': async (p: { vg: string }): Promise<{ freeBytes: number | null; names: string[] }> => ({ freeBytes: (await volumeGroupFree(p.vg)) ?? null, names: await volumeGroupNames() }),
  /** Creates LV `lv` in `vg` and activates it at /dev/VG/LV. */
  'volume.createLv': async (p: { vg: string; lv: string; sizeBytes: number }): Promise<{ path: string }> => {
    await createLv(p.vg, p.lv, p.sizeBytes);
    return { path: await activateLv(p.vg, p.lv) };
  },
  /** Activates an existing LV at /dev/VG/LV. */
  'volume.activateLv': async (p: { vg: string; lv: string }): Promise<{ path: string }> => ({ path: await activateLv(p.vg, p.lv) }),
  /** Deactivates and removes an LV: one ferry created, or a source LV after the commit point with --delete-source. */
  'volume.removeLv': async (p: { vg: string; lv: string }): Promise<void> => removeLv(p.vg, p.lv),
};
