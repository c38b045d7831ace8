import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { ThrottledRelay } from './throttled-relay.js';

async function sink(): Promise<{ port: number; received: () => number; replyWith: (b: Buffer) => void; close: () => void }> {
  let received = 0;
  let peer: Socket | undefined;
  const server = createServer((s) => {
    peer = s;
    s.on('data', (d: Buffer) => (received += d.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    received: () => received,
    replyWith: (b) => peer?.write(b),
    close: () => {
      peer?.destroy();
      server.close();
    },
  };
}

test('the relay forwards bytes towards the target no faster than its cap, and replies unthrottled', async () => {
  const target = await sink();
  const relay = await ThrottledRelay.start({ address: '127.0.0.1', to: { host: '127.0.0.1', port: target.port }, bytesPerSecond: 4 * 1024 * 1024 });
  const client = connect({ host: '127.0.0.1', port: relay.port });
  await new Promise((r) => client.once('connect', r));
  const t0 = performance.now();
  const payload = Buffer.alloc(3 * 1024 * 1024, 7);
  client.write(payload);
  while (target.received() < payload.length) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - t0) / 1000;
  // 3 MiB at 4 MiB/s with a quarter second of burst: at least about half a second.
  assert.ok(seconds >= 0.45, `3 MiB crossed in ${seconds.toFixed(2)} s, faster than the cap allows`);
  assert.ok(seconds < 3, `3 MiB took ${seconds.toFixed(2)} s`);
  assert.equal(relay.forwarded, payload.length);

  let back = 0;
  client.on('data', (d: Buffer) => (back += d.length));
  target.replyWith(Buffer.alloc(1024 * 1024));
  const t1 = performance.now();
  while (back < 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
  assert.ok(performance.now() - t1 < 500, 'replies are not held to the cap');
  client.destroy();
  relay.close();
  target.close();
});

test('closing the relay ends the connections through it', async () => {
  const target = await sink();
  const relay = await ThrottledRelay.start({ address: '127.0.0.1', to: { host: '127.0.0.1', port: target.port }, bytesPerSecond: 1024 * 1024 });
  const client = connect({ host: '127.0.0.1', port: relay.port });
  await new Promise((r) => client.once('connect', r));
  const closed = new Promise((r) => client.once('close', r));
  await new Promise((r) => setTimeout(r, 50));
  relay.close();
  await closed;
  target.close();
});
