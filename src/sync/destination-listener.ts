/**
 * Where the destination connects to the source: a listener on the source
 * host's address that takes the first connection to say the session's
 * token (a Join frame) and drops every other. The destination connects,
 * not the source, because only a connecting socket can read into the
 * buffers the receiver chooses (see frame-assembler.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { FerryError } from '../util/errors.js';
import { FrameParser } from './frame-parser.js';
import { FrameType, HEADER_SIZE } from './protocol.js';

/** Listens on `address`, on a port the system picks. */
export function listen(address: string): Promise<net.Server> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new FerryError('UNREACHABLE', `Cannot listen for the sync on ${address}: ${e.message}`, { hint: "check the host's address in the inventory" })));
    server.listen(0, address, () => resolve(server));
  });
}

/** The port a listening server got. */
export function portOf(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new FerryError('INTERNAL', 'The sync listener has no TCP port', { hint: 'run the sync again' });
  return address.port;
}

/**
 * The first connection that says the session's token within `timeoutMs`;
 * others are dropped, as is one that says more than a token's worth before
 * it. Nothing else comes from the destination before the source's Hello.
 */
export function acceptDestination(server: net.Server, token: string, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const unproven = new Set<net.Socket>();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
      server.off('connection', connection);
      for (const s of unproven) s.destroy();
    };
    const timer = setTimeout(() => {
      done();
      reject(noDestination(server, timeoutMs));
    }, timeoutMs);
    const aborted = (): void => {
      done();
      reject(new FerryError('ABORTED', 'Sync cancelled before the destination connected', { hint: 'run the same command again to start the sync over' }));
    };
    signal?.addEventListener('abort', aborted);
    const connection = (socket: net.Socket): void => {
      unproven.add(socket);
      socket.once('close', () => unproven.delete(socket));
      hearJoin(socket, Buffer.from(token), (proven) => {
        unproven.delete(socket);
        if (!proven) return socket.destroy();
        done();
        resolve(socket);
      });
    };
    server.on('connection', connection);
  });
}

/** Listens to a new connection's first frame: `then(true)` when it is a Join with `expected`; cuts one that says too much. */
function hearJoin(socket: net.Socket, expected: Buffer, then: (proven: boolean) => void): void {
  socket.on('error', () => undefined);
  let heard = 0;
  const parser = new FrameParser((frame) => {
    socket.off('data', onData);
    const said = frame.payload;
    then(frame.type === FrameType.Join && said.length === expected.length && timingSafeEqual(said, expected));
  });
  const onData = (d: Buffer): void => {
    heard += d.length;
    if (heard > HEADER_SIZE + 2 * expected.length) socket.destroy();
    else parser.push(d);
  };
  socket.on('data', onData);
}

function noDestination(server: net.Server, timeoutMs: number): FerryError {
  const address = server.address();
  const where = address !== null && typeof address !== 'string' ? `${address.address}:${address.port}` : 'the sync listener';
  return new FerryError('UNREACHABLE', `No destination connected to ${where} within ${Math.round(timeoutMs / 1000)} s`, {
    hint: 'check that the destination host can reach the source address (firewall, inventory address)',
  });
}
