/**
 * What a sender reports as it goes (relayed to the controller, shown by
 * the CLI) and at the end, and the ticker that reports it.
 */

/** A range of the disk, in bytes. */
export interface ByteRange {
  start: number;
  length: number;
}

/** A sender's figures so far. */
export interface SyncProgress {
  phase: 'compare' | 'verify' | 'done';
  bytesTotal: number;
  bytesCompared: number;
  /** Bytes the source put on the wire (frames and payloads). */
  bytesSent: number;
  /** Block payload bytes before compression. */
  bytesChanged: number;
  blocksTotal: number;
  blocksChanged: number;
  blocksZero: number;
  /** Blocks confirmed by an earlier, interrupted run and skipped. */
  blocksResumed: number;
  /** Blocks the destination has made durable. */
  blocksConfirmed: number;
  bytesVerified: number;
  /** What the verification reads back: the blocks written by this run or a resumed one. */
  bytesToVerify: number;
  compressing: boolean;
  seconds: number;
}

export interface SendResult extends SyncProgress {
  verified: boolean;
  mismatches: ByteRange[];
}

/** Progress at the start of a send of `blockCount` blocks, `size` bytes. */
export function initialProgress(size: number, blockCount: number): SyncProgress {
  return {
    phase: 'compare',
    bytesTotal: size,
    bytesCompared: 0,
    bytesSent: 0,
    bytesChanged: 0,
    blocksTotal: blockCount,
    blocksChanged: 0,
    blocksZero: 0,
    blocksResumed: 0,
    blocksConfirmed: 0,
    bytesVerified: 0,
    bytesToVerify: 0,
    compressing: false,
    seconds: 0,
  };
}

/** Reports a copy of a send's progress every `everyMs`, and on demand, until stopped. */
export class ProgressReporter {
  private readonly ticker: NodeJS.Timeout;

  /**
   * @param progress the figures the send updates
   * @param startedAt when the send started (performance.now()), for `seconds`
   * @param refresh brings figures kept elsewhere (bytes sent, compression) up to date before each report
   */
  constructor(
    private readonly progress: SyncProgress,
    private readonly startedAt: number,
    private readonly refresh: (progress: SyncProgress) => void,
    private readonly onProgress: (progress: SyncProgress) => void,
    everyMs = 250,
  ) {
    this.ticker = setInterval(() => this.report(), everyMs);
  }

  report(): void {
    this.progress.seconds = (performance.now() - this.startedAt) / 1000;
    this.refresh(this.progress);
    this.onProgress({ ...this.progress });
  }

  stop(): void {
    clearInterval(this.ticker);
  }
}
