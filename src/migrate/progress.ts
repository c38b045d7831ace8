/** What a migration tells its watcher while it runs; the CLI renders it. */
export interface DiskProgress {
  device: string;
  done: number;
  total: number;
  ready: boolean;
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
}

export type MigrationEvent =
  | { type: 'phase'; phase: string }
  | { type: 'log'; message: string }
  | { type: 'progress'; progress: MigrationProgress }
  | { type: 'warning'; code: 'NOT_CONVERGING' | 'CRASH_CONSISTENT' | string; message: string };

export type MigrationListener = (e: MigrationEvent) => void;
