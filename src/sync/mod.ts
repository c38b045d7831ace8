/**
 * Block delta sync engine, run by the agents: `startSend` on the source's
 * host listens, `startReceive` on the destination's host connects to it,
 * and the two stream to each other. The controller that starts both ends
 * is src/transfer.
 */
export { startSend, type SendOptions, type SendSession } from './sender.js';
export type { SendResult, SyncProgress } from './sync-progress.js';
export { startReceive, type ReceiveOptions, type ReceivePlan, type ReceiveResult, type ReceiveSession } from './receiver.js';
export type { CompressMode } from './compression.js';
