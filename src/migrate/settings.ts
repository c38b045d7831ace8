/** How a migration should behave: what the user sets on `ferry migrate`. */
import type { TransferSettings } from '../drivers/driver.js';

export interface MigrationSettings extends Omit<TransferSettings, 'bandwidthBytes'> {
  /** Source disk path -> target path; disks not named keep their path. */
  diskMap: Map<string, string>;
  /** Overwrite existing target images, accept an unsafe cache mode. */
  force?: boolean;
  /** Remove the source's disk images once the target runs. */
  deleteSource?: boolean;
}
