/**
 * The controller's protocol with the two agents, against fake agents: what
 * it asks each end, in what order, what it does when one fails, and how it
 * merges their results.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { AgentParams, AgentResult } from '../agent/registry.js';
import { FerryError } from '../util/errors.js';
import type { SendResult, SyncProgress } from '../sync/sync-progress.js';
import type { SyncAgent, SyncMethod } from './sync-agent.js';
import { syncDisks } from './sync-controller.js';
import { verifyError } from './sync-summary.js';

type Handlers = { [M in SyncMethod]?: (params: AgentParams<M>) => Promise<AgentResult<M>> };

class FakeAgent extends EventEmitter implements SyncAgent {
  readonly calls: Array<{ method: SyncMethod; params: unknown }> = [];
  readonly ready = Promise.resolve();
  constructor(
    readonly facts: { hostId: string },
    readonly host: { address: string },
    private readonly handlers: Handlers,
  ) {
    super();
  }
  async call<M extends SyncMethod>(method: M, params: AgentParams<M>): Promise<AgentResult<M>> {
    this.calls.push({ method, params });
    const handler = this.handlers[method] as ((p: AgentParams<M>) => Promise<AgentResult<M>>) | undefined;
    if (!handler) return undefined as AgentResult<M>;
    return handler(params);
  }
  methods(): SyncMethod[] {
    return this.calls.map((c) => c.method);
  }
}

const MiB = 1 << 20;
const disk = (over: Partial<AgentResult<'sync.inspect'>> = {}): AgentResult<'sync.inspect'> => ({
  path: '/d.img',
  exists: true,
  kind: 'file',
  format: 'raw',
  size: 8 * MiB,
  dev: 1,
  ino: 2,
  users: '',
  vmRunning: false,
  busy: false,
  deviceMapper: true,
  ...over,
});
const missing = (): AgentResult<'sync.inspect'> => ({ path: '/new.img', exists: false, users: '', vmRunning: false, busy: false, deviceMapper: true });

const sendResult = (over: Partial<SendResult> = {}): SendResult => ({
  phase: 'done',
  bytesTotal: 8 * MiB,
  bytesCompared: 8 * MiB,
  bytesSent: 2 * MiB + 100,
  bytesChanged: 2 * MiB,
  blocksTotal: 8,
  blocksChanged: 2,
  blocksZero: 3,
  blocksResumed: 0,
  blocksConfirmed: 8,
  bytesVerified: 2 * MiB,
  bytesToVerify: 2 * MiB,
  compressing: false,
  seconds: 1,
  verified: true,
  mismatches: [],
  ...over,
});

function source(over: Handlers = {}, inspected = disk()): FakeAgent {
  // eslint-disable-next-line prefer-const -- assigned after the handlers that use it are made
  let agent: FakeAgent;
  const handlers: Handlers = {
    'sync.inspect': async () => inspected,
    'sync.send': async () => ({ port: 4100, token: 'secret', session: 'send-1' }),
    'sync.sendResult': async () => {
      agent.emit('notification', 'sync.progress', { ...sendResult(), phase: 'compare' } satisfies SyncProgress);
      agent.emit('notification', 'other.event', { phase: 'not progress' });
      return sendResult();
    },
    ...over,
  };
  agent = new FakeAgent({ hostId: 'host-a' }, { address: '10.0.0.1' }, handlers);
  return agent;
}

function destination(over: Handlers = {}, inspected: AgentResult<'sync.inspect'> = disk({ path: '/copy.img', ino: 3 })): FakeAgent {
  return new FakeAgent(
    { hostId: 'host-b' },
    { address: '10.0.0.2' },
    {
      'sync.inspect': async () => inspected,
      'sync.receive': async () => ({ created: false, format: 'raw', size: 8 * MiB, resumeFrom: 0, cachedBlocks: 5, session: 'recv-1' }),
      'sync.receiveResult': async () => ({ directIo: true, bytesWritten: 2 * MiB, blocksWritten: 2, blocksZeroed: 1, verified: true, verifyMismatches: [] }),
      ...over,
    },
  );
}

test('a sync starts the source, points the destination at it, relays progress and merges both results', async () => {
  const src = source();
  const dst = destination();
  const progress: SyncProgress[] = [];
  const summary = await syncDisks({ client: src, path: '/d.img', label: 'a:/d.img' }, { client: dst, path: '/copy.img', label: 'b:/copy.img' }, { onProgress: (p) => progress.push(p) });

  assert.deepEqual(src.methods(), ['sync.inspect', 'sync.send', 'sync.sendResult']);
  assert.deepEqual(dst.methods(), ['sync.inspect', 'sync.receive', 'sync.receiveResult']);
  const inspect = src.calls[0]!.params as AgentParams<'sync.inspect'>;
  const send = src.calls[1]!.params as AgentParams<'sync.send'>;
  const receive = dst.calls[1]!.params as AgentParams<'sync.receive'>;
  // The send takes over the scan started with the inspection, and listens on the source's address.
  assert.equal(send.scan, inspect.scan!.id);
  assert.equal(send.address, '10.0.0.1');
  assert.equal(send.sourceId, 'host-a:/d.img:8388608');
  assert.deepEqual(receive.source, { host: '10.0.0.1', port: 4100, token: 'secret' });
  assert.equal(receive.sourceId, send.sourceId);
  assert.equal(progress.length, 1, 'only sync.progress notifications are relayed');
  assert.equal(src.listenerCount('notification'), 0, 'the relay is removed at the end');
  assert.equal(summary.status, 'ok');
  assert.equal(summary.bytes_sent, 2 * MiB + 100);
  assert.equal(summary.bytes_written, 2 * MiB);
  assert.equal(summary.blocks_cached, 5);
  assert.equal(summary.direct_io, true);
  assert.equal(summary.block_size, MiB);
});

test('into a missing destination the head-start scan is stopped, not cancelled', async () => {
  const src = source();
  const dst = destination({}, missing());
  await syncDisks({ client: src, path: '/d.img', label: 'a:/d.img' }, { client: dst, path: '/new.img', label: 'b:/new.img' });
  assert.ok(src.methods().includes('sync.stopScan'));
  assert.ok(!src.methods().includes('sync.cancelScan'));
  assert.ok((src.calls.find((c) => c.method === 'sync.send')!.params as AgentParams<'sync.send'>).scan !== undefined);
});

test('a destination that cannot be prepared calls off the send and the scan, and its error is the one raised', async () => {
  const src = source();
  const dst = destination({
    'sync.receive': async () => {
      throw new FerryError('NO_SPACE', 'no room', { hint: 'free some' });
    },
  });
  await assert.rejects(syncDisks({ client: src, path: '/d.img', label: 'a' }, { client: dst, path: '/copy.img', label: 'b' }), (e: FerryError) => e.code === 'NO_SPACE');
  assert.deepEqual(src.methods(), ['sync.inspect', 'sync.send', 'sync.cancelSend', 'sync.cancelScan']);
  assert.equal(src.listenerCount('notification'), 0);
});

test("when the source loses the connection, the destination's own failure is reported instead", async () => {
  const src = source({
    'sync.sendResult': async () => {
      throw new FerryError('ABORTED', 'lost the connection');
    },
  });
  const dst = destination({
    'sync.receiveResult': async () => {
      throw new FerryError('COMMAND_FAILED', 'disk write failed');
    },
  });
  await assert.rejects(syncDisks({ client: src, path: '/d.img', label: 'a' }, { client: dst, path: '/copy.img', label: 'b' }), (e: FerryError) => e.code === 'COMMAND_FAILED');
});

test('a source in use by a running VM is copied unverified, with warnings', async () => {
  const src = source({}, disk({ vmRunning: true, users: 'qemu (pid 1)' }));
  const warnings: string[] = [];
  const summary = await syncDisks({ client: src, path: '/d.img', label: 'a' }, { client: destination(), path: '/copy.img', label: 'b' }, { onWarning: (m) => warnings.push(m) });
  assert.equal((src.calls.find((c) => c.method === 'sync.send')!.params as AgentParams<'sync.send'>).verify, false);
  assert.equal(warnings.length, 2);
  assert.deepEqual(summary.warnings, warnings);
});

test('ends that cannot be synced are refused before anything starts', async () => {
  const same = destination({}, disk());
  await assert.rejects(
    syncDisks({ client: source(), path: '/d.img', label: 'a' }, { client: new FakeAgent({ hostId: 'host-a' }, { address: 'x' }, { 'sync.inspect': async () => disk() }), path: '/d.img', label: 'a2' }),
    (e: FerryError) => e.code === 'USAGE' && /onto itself/.test(e.message),
  );
  await assert.rejects(
    syncDisks({ client: source(), path: '/d.img', label: 'a' }, { client: same, path: '/copy.img', label: 'b' }, { blockSize: 1000 }),
    (e: FerryError) => e.code === 'USAGE' && !!e.hint,
  );
  const small = destination({}, disk({ size: MiB, ino: 9 }));
  const src = source();
  await assert.rejects(syncDisks({ client: src, path: '/d.img', label: 'a' }, { client: small, path: '/copy.img', label: 'b' }), (e: FerryError) => e.code === 'TARGET_TOO_SMALL');
  assert.ok(!src.methods().includes('sync.send'));
  assert.ok(src.methods().includes('sync.cancelScan'));
});

test('a failed verification names the differing ranges', async () => {
  const src = source({ 'sync.sendResult': async () => sendResult({ verified: false, mismatches: [{ start: MiB, length: MiB }] }) });
  const summary = await syncDisks({ client: src, path: '/d.img', label: 'a:/d.img' }, { client: destination(), path: '/copy.img', label: 'b:/copy.img' });
  assert.equal(summary.status, 'verify-failed');
  const e = verifyError(summary);
  assert.equal(e.code, 'VERIFY_FAILED');
  assert.match(e.message, /1048576\+1048576/);
  assert.ok(e.hint);
});
