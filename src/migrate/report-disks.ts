/** The report's view of each disk: where it went, and what ferry made there. */
import type { DiskPlan } from '../drivers/driver.js';

export interface ReportDisk {
  device: string;
  source: string;
  target: {
    path: string;
    format: string;
    /** ferry made this image (a file or an LV) for the move; false: it wrote into what was there, or the disk is shared. */
    created: boolean;
    /** The target is an LVM logical volume ferry created (by this run or an interrupted one it continued). */
    lv?: { vg: string; name: string; size_bytes: number; created: true };
    shared?: boolean;
    /** The target held this read-only image already, byte for byte: used as it was, not copied. */
    present?: boolean;
  };
}

export function reportDisks(plans: readonly DiskPlan[]): ReportDisk[] {
  return plans.map((p) => ({
    device: p.disk.device,
    source: p.disk.path,
    target: {
      path: p.targetPath,
      format: p.targetFormat,
      // A warm pre-copy clears `create` once it has made the image: `precopied` images are its own.
      created: !p.shared && !p.targetDevice && (p.create || !!p.resume || !!p.precopied),
      ...(p.targetLv ? { lv: { vg: p.targetLv.vg, name: p.targetLv.lv, size_bytes: p.targetLv.sizeBytes, created: true as const } } : {}),
      ...(p.shared ? { shared: true } : {}),
      ...(p.present ? { present: true } : {}),
    },
  }));
}
