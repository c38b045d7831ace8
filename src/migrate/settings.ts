/** How a migration should behave: what the user sets on `ferry migrate`. */
import type { TransferSettings } from '../drivers/driver.js';

export interface MigrationSettings extends Omit<TransferSettings, 'bandwidthBytes'> {
  /** Source disk path -> target path; disks not named keep their path. */
  diskMap: Map<string, string>;
  /** --create-lv VG: a source disk that is an LV gets a new LV in this volume group on the target. */
  createLv?: string;
  /** Overwrite existing target images, accept an unsafe cache mode. */
  force?: boolean;
  /** Remove the source's disk images once the target runs. */
  deleteSource?: boolean;
  /** Cold moves: power a running VM off first (ACPI), waiting this long, then refuse unless forceOff. */
  shutdown?: boolean;
  shutdownTimeoutMs?: number;
  forceOff?: boolean;
  /** Cold moves: leave the VM made but not started on the target. */
  noStart?: boolean;
  /** Warm moves: stop once the target is in step, leaving the VM running on the source. */
  precopyOnly?: boolean;
  /** Warm moves: finish a move whose pre-copy an earlier --precopy-only made; refuse if there is none. */
  cutover?: boolean;
  /** Warm moves with reboot: run ferry's guest fixes on the target's copy before its first boot there. */
  fixGuest?: boolean;
}
