/**
 * Fixtures for the sync engine's unit tests (not used by the engine):
 * temp files opened as disks, a socket pair on loopback, an in-memory
 * socket that parses the frames written to it, and pooled frames.
 */
import { startReceive } from './receiver.js';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import { openDisk, type DiskEndpoint } from '../storage/endpoint.js';
import { statDisk } from '../storage/image-info.js';
import type { PooledFrame } from './frame-assembler.js';
import { FrameParser } from './frame-parser.js';
import type { Frame, FrameType } from './protocol.js';

/** A fresh temp directory; remove it with `fs.rm(dir, { recursive: true })`. */
export function tempDir(name: string): Promise<string> {
  return fs.mkdtemp(`/var/tmp/ferry-${name}-`);
}

/** A raw file opened as a disk (buffered I/O unless `direct`). */
export async function openFile(path: string, writable = true, direct = false): Promise<DiskEndpoint> {
  return openDisk(await statDisk(path), writable, { direct });
}

/** A writable stream standing in for a socket: every frame written to it, parsed. */
export function frameSink(): { stream: Writable; frames: Frame[] } {
  const frames: Frame[] = [];
  const parser = new FrameParser((f) => frames.push(f));
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      parser.push(Buffer.from(chunk));
      done();
    },
  });
  return { stream, frames };
}

/** Two connected sockets on loopback. */
export async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect({ host: '127.0.0.1', port: address.port });
  const [a] = await Promise.all([accepted, new Promise((resolve) => client.once('connect', resolve))]);
  server.close();
  return [a, client];
}

/** Frames read from a socket, as they arrive. */
export function framesFrom(socket: net.Socket): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser((f) => frames.push(f));
  socket.on('data', (d: Buffer) => parser.push(d));
  return frames;
}

/** A frame as the assembler hands it out; `released` counts its releases. */
export function pooledFrame(type: FrameType, index: number, payload: Buffer = Buffer.alloc(0), flags = 0): PooledFrame & { released: number } {
  const frame = { type, flags, index, payload, parts: [payload], released: 0, release: () => void frame.released++ };
  return frame;
}

/** Waits until `check()` holds (polling), or fails after `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A destination receiving a raw copy from the source `sending` listens for, into `dst`, as the agents do. */
export function receiveFrom(sending: { port: number; token: string }, dst: string, size: number, blockSize: number): ReturnType<typeof startReceive> {
  return startReceive({
    path: dst,
    source: { host: '127.0.0.1', port: sending.port, token: sending.token },
    sourceSize: size,
    sourceFormat: 'raw',
    sourceId: 'test',
    blockSize,
    resume: false,
    dryRun: false,
    force: false,
    direct: true,
    hashThreads: 1,
  });
}
