/** What a sender reports as it goes (relayed to the controller) and at the end. */
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
  mismatches: Array<{ start: number; length: number }>;
}
