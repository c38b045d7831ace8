/**
 * The source's channel to the destination, over the socket the destination
 * connected with: frames out (throttled to --bandwidth, counted), and what
 * the destination tells, as it arrives: its digests, the digests it read
 * back, its acknowledgements and load, Ready and Done. When the connection
 * drops, everything waiting on the destination fails with one error.
 */
import type * as net from 'node:net';
import type { FerryError } from '../util/errors.js';
import { trace } from '../util/trace.js';
import { DigestTable } from './digest-table.js';
import { FrameParser } from './frame-parser.js';
import { FrameWriter } from './frame-writer.js';
import { FrameType, decodeHashes, frameDigest, frameJson, type Frame, type ReceiverLoad, type ReceiverReady, type SenderHello } from './protocol.js';
import { Throttle } from './throttle.js';

export interface ChannelOptions {
  blockCount: number;
  /** Bytes per second on the wire; undefined for no limit. */
  bandwidth?: number;
  /** The error for a lost connection, as of now. */
  lostError(): FerryError;
  /** The destination acknowledged that every block below `mark` is safe from a crash of either agent. */
  onAck(mark: number): void;
  /** Drops the connection once this many bytes are sent (fault injection for tests; 0: never). */
  dropAfterBytes?: number;
}

export class DestinationChannel {
  /** The destination's digests, as it streams them. */
  readonly destinationDigests: DigestTable;
  /** The digests of blocks the destination read back for the verification. */
  readonly readBackDigests: DigestTable;
  /** Share of time the destination spends writing: when high, it (not the link) holds the sync back. */
  receiverBusy = 0;
  private readonly writer: FrameWriter;
  private readonly throttle: Throttle;
  private waitingSeconds = 0;
  private closedError: FerryError | undefined;
  private readonly closeWaiters = new Set<(e: FerryError) => void>();
  private readonly ready: Promise<ReceiverReady>;
  private readonly done: Promise<void>;
  private onReady!: (ready: ReceiverReady) => void;
  private onDone!: () => void;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: ChannelOptions,
  ) {
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket);
    this.throttle = new Throttle(options.bandwidth);
    this.destinationDigests = new DigestTable(options.blockCount);
    this.readBackDigests = new DigestTable(options.blockCount);
    this.ready = new Promise((resolve) => (this.onReady = resolve));
    this.done = new Promise((resolve) => (this.onDone = resolve));
    const parser = new FrameParser((frame) => this.receive(frame));
    socket.on('data', (d: Buffer) => parser.push(d));
    socket.on('close', () => {
      const lost = options.lostError();
      this.closedError = lost;
      for (const wake of this.closeWaiters) wake(lost);
    });
    socket.on('error', () => undefined);
  }

  /** Bytes put on the wire so far. */
  get bytesSent(): number {
    return this.writer.bytesWritten;
  }

  /** Says Hello; resolves with the destination's Ready. */
  async hello(hello: SenderHello): Promise<ReceiverReady> {
    await this.writer.sendJson(FrameType.Hello, hello);
    return this.orClose(this.ready);
  }

  /** Sends a frame, within the bandwidth limit; fails once the connection is lost. */
  async send(type: FrameType, index: number, payload?: Buffer, flags = 0, onFlushed?: () => void): Promise<void> {
    if (this.closedError) throw this.closedError;
    if (payload) await this.throttle.take(payload.length);
    if (this.socket.destroyed) throw this.options.lostError();
    const started = performance.now();
    await this.writer.send(type, index, payload, flags, onFlushed);
    this.waitingSeconds += (performance.now() - started) / 1000;
    const dropAfter = this.options.dropAfterBytes ?? 0;
    if (dropAfter && this.writer.bytesWritten > dropAfter) this.socket.destroy();
  }

  /** Seconds spent waiting for the socket since the last call. */
  takeWaitingSeconds(): number {
    const seconds = this.waitingSeconds;
    this.waitingSeconds = 0;
    return seconds;
  }

  /** Resolves once `table` has block `index` (a digest table this channel fills). */
  arrived(table: DigestTable, index: number): Promise<void> {
    return table.has(index) ? Promise.resolve() : this.orClose(table.wait(index));
  }

  /** Resolves once the destination has said Done. */
  whenDone(): Promise<void> {
    return this.orClose(this.done);
  }

  /** `promise`, or the lost connection's error, whichever comes first. */
  private orClose<T>(promise: Promise<T>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<T>((resolve, reject) => {
      this.closeWaiters.add(reject);
      promise.then(resolve, reject).finally(() => this.closeWaiters.delete(reject));
    });
  }

  private receive(frame: Frame): void {
    const last = this.options.blockCount - 1;
    switch (frame.type) {
      case FrameType.Ready:
        this.onReady(frameJson<ReceiverReady>(frame));
        break;
      case FrameType.Hash:
        this.destinationDigests.set(frame.index, frameDigest(frame));
        if (frame.index === last) trace('send: all destination digests in');
        break;
      case FrameType.Hashes:
        decodeHashes(frame.payload, (k, digest) => this.destinationDigests.set(frame.index + k, digest));
        if (this.destinationDigests.has(last)) trace('send: all destination digests in');
        break;
      case FrameType.VerifyHash:
        this.readBackDigests.set(frame.index, frameDigest(frame));
        break;
      case FrameType.Ack:
        this.options.onAck(frame.index);
        if (frame.payload.length) this.receiverBusy = frameJson<ReceiverLoad>(frame).busy;
        break;
      case FrameType.Done:
        this.onDone();
        break;
    }
  }
}
