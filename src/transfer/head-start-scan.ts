/**
 * The controller's handle on a source's head-start scan (see
 * src/sync/source-scan.ts): the source agent starts it as it inspects the
 * source, under a name chosen here; the send that follows takes it over.
 * Into a new disk every block crosses and would be read twice, so the scan
 * is stopped (keeping its disk and threads for the send); if the sync fails
 * it is called off.
 */
import { randomBytes } from 'node:crypto';
import type { ScanRequest } from '../agent/handlers/sync.js';
import type { SyncAgent } from './sync-agent.js';

export class HeadStartScan {
  readonly request: ScanRequest;
  private wanted = true;

  constructor(
    private readonly source: SyncAgent,
    blockSize: number,
    hashThreads?: number,
  ) {
    this.request = { id: randomBytes(8).toString('hex'), blockSize, hashThreads };
  }

  /** The scan's name for `sync.send`, unless it was called off. */
  get id(): string | undefined {
    return this.wanted ? this.request.id : undefined;
  }

  /** Stops reading ahead (the destination is new); the send still takes the scan's disk and threads. */
  stop(): void {
    void this.source.call('sync.stopScan', { scan: this.request.id }).catch(() => undefined);
  }

  /** Calls the scan off (the sync failed); once. */
  async cancel(): Promise<void> {
    if (!this.wanted) return;
    this.wanted = false;
    await this.source.call('sync.cancelScan', { scan: this.request.id }).catch(() => undefined);
  }
}
