/** What a migration tells its watcher while it runs; the CLI renders it. */
export interface DiskProgress {
  device: string;
  done: number;
  total: number;
  ready: boolean;
  /**
   * Bytes per second the guest writes to this disk, e.g. from the growth of
   * query-blockstats' wr_bytes. Optional: without it the view infers the
   * writes that add to the copy from the growth of `total`.
   */
  writeRate?: number;
}

export interface RamProgress {
  transferred: number;
  remaining: number;
  total: number;
  /** Bytes per second the guest dirties, per QEMU's estimate. */
  dirtyRate: number;
  /** Bytes per second QEMU sends. */
  throughput: number;
  iterations: number;
}

export interface MigrationProgress {
  phase: string;
  disks: DiskProgress[];
  ram?: RamProgress;
  /** Seconds left, when it can be estimated. */
  etaSeconds?: number;
  /**
   * The guest's RAM in bytes, known before the RAM phase starts. Optional:
   * with it the overall view counts the RAM still to come while the disks copy.
   */
  ramSize?: number;
  /** Bytes per second allowed for disks and RAM together (--bandwidth); absent: no cap. */
  bandwidthLimit?: number;
}

export type MigrationEvent =
  | { type: 'phase'; phase: string }
  | { type: 'log'; message: string }
  | { type: 'progress'; progress: MigrationProgress }
  | { type: 'warning'; /** e.g. NOT_CONVERGING, CRASH_CONSISTENT */ code: string; message: string };

export type MigrationListener = (e: MigrationEvent) => void;
