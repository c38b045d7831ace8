import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import type { FerryError } from '../util/errors.js';
import { acceptDestination, listen, portOf } from './destination-listener.js';
import { FrameType, encodeHeader } from './protocol.js';

function join(port: number, words: string | Buffer): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port });
  const said = Buffer.from(words);
  socket.on('error', () => undefined);
  socket.write(Buffer.concat([encodeHeader(FrameType.Join, 0, 0, said.length), said]));
  return socket;
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

test('the connection that says the token is taken; a wrong token and a chatterbox are dropped', async () => {
  const server = await listen('127.0.0.1');
  const port = portOf(server);
  try {
    const accepting = acceptDestination(server, 'right-token', 5000);
    const wrong = join(port, 'wrong-token');
    const chatty = join(port, Buffer.alloc(100, 1));
    await Promise.all([closed(wrong), closed(chatty)]);
    const right = join(port, 'right-token');
    const accepted = await accepting;
    assert.equal(accepted.remotePort, right.localPort);
    accepted.destroy();
    right.destroy();
  } finally {
    server.close();
  }
});

test('no destination within the time allowed, or an abort, ends the wait with a clear error', async () => {
  const server = await listen('127.0.0.1');
  try {
    await assert.rejects(acceptDestination(server, 'token', 50), (e: FerryError) => e.code === 'UNREACHABLE' && !!e.hint);
    const abort = new AbortController();
    const waiting = acceptDestination(server, 'token', 5000, abort.signal);
    abort.abort();
    await assert.rejects(waiting, (e: FerryError) => e.code === 'ABORTED');
  } finally {
    server.close();
  }
});

test('an address nobody can listen on is refused with a hint', async () => {
  await assert.rejects(listen('192.0.2.1'), (e: FerryError) => e.code === 'UNREACHABLE' && /inventory/.test(e.hint ?? ''));
});
