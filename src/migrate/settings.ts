/** How a live migration should behave: what the user sets on `ferry migrate`. */
export interface MigrationSettings {
  /** Source disk path -> target path; disks not named keep their path. */
  diskMap: Map<string, string>;
  /** Longest pause QEMU may plan for the switch-over. */
  maxDowntimeMs?: number;
  /** Let QEMU throttle a guest that dirties RAM faster than the link. */
  autoConverge?: boolean;
  /**
   * write-blocking (default): a guest write completes once both hosts have
   * it, so the mirror never falls behind and the pause is shorter;
   * background: guest writes do not wait for the network, the mirror
   * catches up on its own.
   */
  mirrorMode?: 'write-blocking' | 'background';
  /** Overwrite existing target images, accept an unsafe cache mode. */
  force?: boolean;
  /** Remove the source's disk images once the target runs. */
  deleteSource?: boolean;
}
