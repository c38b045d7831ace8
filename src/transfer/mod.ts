/**
 * The controller's side of a block delta sync, for the CLI and for cold and
 * warm migrations: `syncDisks` takes an agent per side and has their sync
 * engines (src/sync) stream to each other. Data flows CLI -> here -> hosts'
 * agents -> src/sync; nothing here runs in an agent.
 */
export { syncDisks, DEFAULT_BLOCK_SIZE, type SyncSide, type SyncOptions } from './sync-controller.js';
export { verifyError, type SyncSummary } from './sync-summary.js';
export type { SyncAgent } from './sync-agent.js';
export { parseEndpointSpec, formatEndpointSpec, type EndpointSpec } from './endpoint-spec.js';
