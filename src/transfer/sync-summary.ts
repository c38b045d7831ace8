/**
 * The result of one sync as the CLI prints it (and `--json` emits it):
 * both ends' results merged, and the error for a failed verification.
 */
import type { AgentResult } from '../agent/registry.js';
import type { SendResult } from '../sync/sync-progress.js';
import { FerryError } from '../util/errors.js';

export interface SyncSummary {
  status: 'ok' | 'dry-run' | 'verify-failed';
  source: string;
  destination: string;
  bytes_total: number;
  bytes_sent: number;
  bytes_changed: number;
  bytes_written: number;
  blocks_total: number;
  blocks_changed: number;
  blocks_zero: number;
  blocks_resumed: number;
  /** Destination blocks whose digests came from the last sync's record, not from reading them. */
  blocks_cached: number;
  block_size: number;
  created: boolean;
  compressed: boolean;
  /** The destination was written with direct I/O, bypassing the page cache. */
  direct_io: boolean;
  seconds: number;
  verified: boolean;
  mismatches: Array<{ start: number; length: number }>;
  warnings: string[];
}

/** What each end reported, and how the run was set up. */
export interface SyncEnds {
  source: string;
  destination: string;
  dryRun: boolean;
  blockSize: number;
  startedAt: number;
  warnings: string[];
  sent: SendResult;
  plan: AgentResult<'sync.receive'>;
  received: AgentResult<'sync.receiveResult'>;
}

/** Merges the source's and the destination's results into one summary. */
export function summarize(ends: SyncEnds): SyncSummary {
  const { sent, plan, received } = ends;
  return {
    status: ends.dryRun ? 'dry-run' : sent.mismatches.length ? 'verify-failed' : 'ok',
    source: ends.source,
    destination: ends.destination,
    bytes_total: sent.bytesTotal,
    bytes_sent: sent.bytesSent,
    bytes_changed: sent.bytesChanged,
    bytes_written: received.bytesWritten,
    blocks_total: sent.blocksTotal,
    blocks_changed: sent.blocksChanged,
    blocks_zero: sent.blocksZero,
    blocks_resumed: sent.blocksResumed,
    blocks_cached: plan.cachedBlocks,
    block_size: ends.blockSize,
    created: plan.created,
    compressed: sent.compressing,
    direct_io: received.directIo,
    seconds: (performance.now() - ends.startedAt) / 1000,
    verified: sent.verified,
    mismatches: sent.mismatches,
    warnings: ends.warnings,
  };
}

/** The error for a failed verification, naming the differing ranges. */
export function verifyError(summary: SyncSummary): FerryError {
  const ranges = summary.mismatches
    .slice(0, 10)
    .map((r) => `${r.start}+${r.length}`)
    .join(', ');
  const more = summary.mismatches.length > 10 ? ', ...' : '';
  return new FerryError(
    'VERIFY_FAILED',
    `Verification failed: "${summary.destination}" differs from "${summary.source}" at ${summary.mismatches.length} range(s) (offset+length in bytes): ${ranges}${more}`,
    {
      hint: 'run the sync again (only the differing blocks are sent); if it keeps failing, check the destination disk for errors',
      details: { mismatches: summary.mismatches },
    },
  );
}
