/**
 * The target's guard against a fake QEMU monitor: the test plays QEMU on a
 * unix socket (status, migration state, events) and asks the beacon what the
 * source's agent would hear.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadRecord } from './migration-record.js';
import { TargetGuard } from './target-guard.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-target-guard-'));
process.env.FERRY_MIGRATION_DIR = join(dir, 'records');

/** A QEMU monitor that answers from `state` and sends events on demand. */
async function fakeMonitor(path: string, state: { status: string; migration: string }): Promise<{ server: Server; event: (e: Record<string, unknown>) => void }> {
  const clients = new Set<Socket>();
  const server = createServer((s) => {
    clients.add(s);
    s.on('close', () => clients.delete(s));
    s.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + '\n');
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string };
        buf = buf.slice(nl + 1);
        const answers: Record<string, unknown> = { 'query-status': { status: state.status, running: state.status === 'running' }, 'query-migrate': { status: state.migration } };
        s.write(JSON.stringify({ return: answers[msg.execute] ?? {}, id: msg.id }) + '\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { server, event: (e) => clients.forEach((c) => c.write(JSON.stringify({ ...e, timestamp: { seconds: 0, microseconds: 0 } }) + '\n')) };
}

function askBeacon(port: number, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => s.write(`${token}\n`));
    let reply = '';
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', reject);
    s.on('close', () => (reply ? resolve((JSON.parse(reply) as { phase: string }).phase) : reject(new Error('no answer'))));
  });
}

/** A process whose command line holds `-incoming`, standing in for the incoming QEMU. */
function incomingStandIn(): ReturnType<typeof spawn> {
  return spawn('sh', ['-c', 'sleep 60', 'qemu', '-incoming', 'defer'], { stdio: 'ignore' });
}

test('the incoming migration completing is the commit point: recorded on disk and told by the beacon', async () => {
  const socket = join(dir, 'commit.qmp');
  const state = { status: 'inmigrate', migration: 'active' };
  const monitor = await fakeMonitor(socket, state);
  const qemu = incomingStandIn();
  try {
    const guard = TargetGuard.begin({ id: 'commit', vm: 'web01', token: 'secret' });
    guard.claim({ pid: qemu.pid, qmpSocket: socket });
    const { port } = await guard.incoming('127.0.0.1');
    assert.equal(await askBeacon(port, 'secret'), 'incoming');
    state.status = 'running';
    state.migration = 'completed';
    monitor.event({ event: 'MIGRATION', data: { status: 'completed' } });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(loadRecord('commit', 'target')?.phase, 'committed');
    assert.equal(await askBeacon(port, 'secret'), 'committed');
    assert.equal(await guard.resolve({ abort: true }), 'committed', 'a committed VM is never destroyed, even when asked to abort');
    assert.equal(qemu.exitCode, null, 'the VM still runs');
    guard.release();
    assert.equal(loadRecord('commit', 'target'), undefined);
  } finally {
    qemu.kill();
    monitor.server.close();
  }
});

test('a beacon asked with another token says nothing', async () => {
  const socket = join(dir, 'token.qmp');
  const monitor = await fakeMonitor(socket, { status: 'inmigrate', migration: 'setup' });
  const qemu = incomingStandIn();
  try {
    const guard = TargetGuard.begin({ id: 'token', vm: 'web02', token: 'right' });
    guard.claim({ pid: qemu.pid, qmpSocket: socket });
    try {
      const { port } = await guard.incoming('127.0.0.1');
      await assert.rejects(askBeacon(port, 'wrong'));
    } finally {
      guard.release();
    }
  } finally {
    qemu.kill();
    monitor.server.close();
  }
});

test('an incoming VM whose migration has not started is destroyed on abort, with the files ferry made', async () => {
  const socket = join(dir, 'abort.qmp');
  const monitor = await fakeMonitor(socket, { status: 'inmigrate', migration: 'setup' });
  const qemu = incomingStandIn();
  const image = join(dir, 'abort.qcow2');
  writeFileSync(image, 'not yet a disk');
  try {
    const guard = TargetGuard.begin({ id: 'abort', vm: 'web03', token: 't' });
    guard.claim({ files: [image] });
    guard.claim({ pid: qemu.pid, qmpSocket: socket });
    await guard.incoming('127.0.0.1');
    const exited = new Promise((r) => qemu.once('exit', r));
    assert.equal(await guard.resolve({ abort: true }), 'aborted');
    await exited;
    assert.equal(existsSync(image), false, 'the image ferry made is removed');
    assert.equal(loadRecord('abort', 'target')?.phase, 'aborted');
    guard.release();
  } finally {
    qemu.kill();
    monitor.server.close();
  }
});

test('without abort, a guard waits for the commit and says so when the wait runs out', async () => {
  const socket = join(dir, 'wait.qmp');
  const monitor = await fakeMonitor(socket, { status: 'inmigrate', migration: 'active' });
  const qemu = incomingStandIn();
  try {
    const guard = TargetGuard.begin({ id: 'wait', vm: 'web04', token: 't' });
    guard.claim({ pid: qemu.pid, qmpSocket: socket });
    await guard.incoming('127.0.0.1');
    assert.equal(await guard.resolve({ abort: false, waitMs: 300 }), 'incoming');
    assert.equal(qemu.exitCode, null, 'nothing was destroyed');
    guard.release();
  } finally {
    qemu.kill();
    monitor.server.close();
  }
});
