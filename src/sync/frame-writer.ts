/**
 * Frames onto a socket (either end), with backpressure: a send resolves
 * once the socket can take more. Small frames written in one tick go out
 * in one system call.
 */
import type { Writable } from 'node:stream';
import { FerryError } from '../util/errors.js';
import { FrameFlag, HEADER_SIZE, encodeHeader, type FrameType } from './protocol.js';

/** Writes frames with backpressure; counts bytes put on the wire. */
/** A frame sent after the connection closed: the peer went, which is the error to report, not this. */
export class ConnectionClosedError extends FerryError {
  constructor() {
    super('INTERNAL', 'the sync connection is closed', { hint: 'run the same command again with --resume to continue from the last checkpoint' });
  }
}

export class FrameWriter {
  bytesWritten = 0;
  private drained: Promise<void> | undefined;
  private corked = false;

  constructor(private readonly socket: Writable) {}

  /**
   * Queues a frame. Resolves once the socket can take more (not when the
   * bytes are sent); `onFlushed` fires when the payload buffer is free again.
   */
  async send(type: FrameType, index: number, payload?: Uint8Array, flags = 0, onFlushed?: () => void): Promise<void> {
    if (this.socket.destroyed) throw new ConnectionClosedError();
    const length = payload?.length ?? 0;
    this.bytesWritten += HEADER_SIZE + length;
    // Thousands of small frames (hashes, verdicts) go out together: the
    // socket gathers what is written in one tick into one system call.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let ok = this.socket.write(encodeHeader(type, flags, index, length));
    if (payload && length) ok = this.socket.write(payload, onFlushed ? () => onFlushed() : undefined);
    else onFlushed?.();
    if (!ok) await this.waitDrain();
  }

  /** A block's digest (Hash, VerifyHash), or the zero-block flag when `digest` is undefined. */
  sendDigest(type: FrameType, index: number, digest: Uint8Array | undefined): Promise<void> {
    return digest ? this.send(type, index, digest) : this.send(type, index, undefined, FrameFlag.ZeroBlock);
  }

  sendJson(type: FrameType, value: unknown): Promise<void> {
    return this.send(type, 0, Buffer.from(JSON.stringify(value)));
  }

  private waitDrain(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    this.drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.drained = undefined;
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    return this.drained;
  }
}
