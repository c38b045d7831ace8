import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { DestinationChannel } from './destination-channel.js';
import { FrameWriter } from './frame-writer.js';
import { FrameType, encodeHashes } from './protocol.js';
import { framesFrom, socketPair, until } from './test-fixtures.js';

const hello = { token: 't', size: 4096 * 4, blockSize: 4096, sourceId: 's', resume: false, dryRun: false, verify: true };

test('what the destination says fills the tables and resolves the waits; frames out are counted', async () => {
  const [source, destination] = await socketPair();
  const acks: number[] = [];
  const channel = new DestinationChannel(source, { blockCount: 4, lostError: () => new FerryError('ABORTED', 'lost'), onAck: (m) => acks.push(m) });
  const heard = framesFrom(destination);
  const answer = new FrameWriter(destination);
  const ready = channel.hello(hello);
  await until(() => heard.length === 1);
  assert.equal(heard[0]!.type, FrameType.Hello);
  await answer.sendJson(FrameType.Ready, { startBlock: 1 });
  assert.deepEqual(await ready, { startBlock: 1 });

  const waiting = channel.arrived(channel.destinationDigests, 3);
  await answer.sendDigest(FrameType.Hash, 1, Buffer.alloc(16, 1));
  await answer.send(FrameType.Hashes, 2, encodeHashes([undefined, Buffer.alloc(16, 3)]));
  await waiting;
  assert.ok(channel.destinationDigests.isZero(2));
  assert.deepEqual(channel.destinationDigests.digest(3), Buffer.alloc(16, 3));
  await answer.sendDigest(FrameType.VerifyHash, 1, undefined);
  await answer.send(FrameType.Ack, 3, Buffer.from(JSON.stringify({ busy: 0.75 })));
  await channel.arrived(channel.readBackDigests, 1);
  assert.ok(channel.readBackDigests.isZero(1));
  await until(() => acks.length === 1);
  assert.deepEqual(acks, [3]);
  assert.equal(channel.receiverBusy, 0.75);

  const before = channel.bytesSent;
  await channel.send(FrameType.Data, 1, Buffer.alloc(100));
  assert.equal(channel.bytesSent - before, 16 + 100);
  const done = channel.whenDone();
  await answer.sendJson(FrameType.Done, {});
  await done;
  source.destroy();
  destination.destroy();
});

test('a lost connection fails every wait and every later send with one error', async () => {
  const [source, destination] = await socketPair();
  const channel = new DestinationChannel(source, { blockCount: 4, lostError: () => new FerryError('ABORTED', 'lost the destination', { hint: 'resume' }), onAck: () => undefined });
  const waiting = channel.arrived(channel.destinationDigests, 0);
  const done = channel.whenDone();
  destination.destroy();
  await assert.rejects(waiting, /lost the destination/);
  await assert.rejects(done, /lost the destination/);
  await assert.rejects(channel.send(FrameType.Same, 0), (e: FerryError) => e.code === 'ABORTED');
});

test('fault injection: the connection drops once the byte budget is spent', async () => {
  const [source, destination] = await socketPair();
  const channel = new DestinationChannel(source, { blockCount: 1, lostError: () => new FerryError('ABORTED', 'lost'), onAck: () => undefined, dropAfterBytes: 100 });
  await channel.send(FrameType.Data, 0, Buffer.alloc(50));
  assert.equal(source.destroyed, false);
  await channel.send(FrameType.Data, 0, Buffer.alloc(50));
  assert.equal(source.destroyed, true);
  destination.destroy();
});
