import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { QmpClient } from './client.js';
import { QmpError } from './errors.js';

/** An in-memory QMP peer: the test plays QEMU. */
function pair(): { client: QmpClient; qemu: { lines: string[]; send: (o: unknown) => void; end: () => void; next: () => Promise<Record<string, unknown>> } } {
  const toClient = new PassThrough();
  const toQemu = new PassThrough();
  const stream = Duplex.from({ readable: toClient, writable: toQemu });
  const client = new QmpClient(stream);
  const lines: string[] = [];
  const waiters: Array<(o: Record<string, unknown>) => void> = [];
  const queued: Array<Record<string, unknown>> = [];
  let buf = '';
  toQemu.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      const w = waiters.shift();
      if (w) w(JSON.parse(line) as Record<string, unknown>);
      else queued.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  return {
    client,
    qemu: {
      lines,
      send: (o) => toClient.write(JSON.stringify(o) + '\n'),
      end: () => {
        toClient.end();
        stream.destroy();
      },
      next: () => new Promise((r) => (queued.length ? r(queued.shift()!) : waiters.push(r))),
    },
  };
}

test('qmp handshake negotiates capabilities after the greeting', async () => {
  const { client, qemu } = pair();
  const hs = client.handshake();
  qemu.send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: '' }, capabilities: [] } });
  const cmd = await qemu.next();
  assert.equal(cmd.execute, 'qmp_capabilities');
  qemu.send({ return: {}, id: cmd.id });
  const g = await hs;
  assert.equal(g.version.qemu.major, 7);
});

test('qmp replies are matched to commands by id, out of order', async () => {
  const { client, qemu } = pair();
  const a = client.execute<{ status: string }>('query-status');
  const b = client.execute<string>('query-name');
  const ca = await qemu.next();
  const cb = await qemu.next();
  qemu.send({ return: 'web01', id: cb.id });
  qemu.send({ return: { status: 'running' }, id: ca.id });
  assert.deepEqual(await a, { status: 'running' });
  assert.equal(await b, 'web01');
});

test('qmp errors carry QEMU error class', async () => {
  const { client, qemu } = pair();
  const p = client.execute('blockdev-mirror', { device: 'nope' });
  const c = await qemu.next();
  qemu.send({ error: { class: 'DeviceNotFound', desc: "Cannot find device='nope'" }, id: c.id });
  await assert.rejects(p, (e: unknown) => e instanceof QmpError && e.qmpClass === 'DeviceNotFound' && e.code === 'QMP_ERROR');
});

test('qmp events are emitted and can be awaited with a filter', async () => {
  const { client, qemu } = pair();
  const w = client.waitForEvent('BLOCK_JOB_READY', (e) => e.data.device === 'drive1', 1000);
  qemu.send({ event: 'BLOCK_JOB_READY', data: { device: 'drive0' }, timestamp: { seconds: 1, microseconds: 0 } });
  qemu.send({ event: 'BLOCK_JOB_READY', data: { device: 'drive1' }, timestamp: { seconds: 2, microseconds: 500 } });
  const e = await w;
  assert.equal(e.data.device, 'drive1');
  assert.equal(e.timestampMs, 2000.5);
});

test('qmp command times out when QEMU does not answer', async () => {
  const { client } = pair();
  await assert.rejects(client.execute('query-status', undefined, { timeoutMs: 50 }), (e: unknown) => e instanceof FerryError && e.code === 'QMP_TIMEOUT');
});

test('qmp pending commands and event waits fail cleanly when QEMU goes away', async () => {
  const { client, qemu } = pair();
  const p = client.execute('query-migrate');
  const w = client.waitForEvent('MIGRATION', () => true, 5000);
  await qemu.next();
  qemu.end();
  await assert.rejects(p, (e: unknown) => e instanceof FerryError && e.code === 'QMP_CLOSED');
  await assert.rejects(w, (e: unknown) => e instanceof FerryError && e.code === 'QMP_CLOSED');
  await assert.rejects(client.execute('query-status'), (e: unknown) => e instanceof FerryError && e.code === 'QMP_CLOSED');
});
