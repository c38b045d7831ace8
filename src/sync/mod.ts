/**
 * Block delta sync: the public API for the CLI and for cold and warm
 * migrations. A controller calls `syncDisks` with an agent client per side;
 * the agents run `startSend` and `startReceive` (which connects to the
 * sender) and stream straight to each other.
 */
export { syncDisks, verifyError, DEFAULT_BLOCK_SIZE, type SyncSide, type SyncOptions, type SyncSummary } from './controller.js';
export { parseEndpointSpec, formatEndpointSpec, type EndpointSpec } from './endpoint-spec.js';
export { startSend, type SendOptions, type SendResult, type SendSession, type SyncProgress } from './sender.js';
export { startReceive, type ReceiveOptions, type ReceivePlan, type ReceiveResult, type ReceiveSession } from './receiver.js';
export type { CompressMode } from './compression.js';
