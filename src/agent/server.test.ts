import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import * as rpc from 'vscode-jsonrpc/node.js';
import { FERRY_ERROR_CODE, serveAgent } from './server.js';

/** An agent served over in-memory streams, and a connection to it. */
function agent(): { connection: rpc.MessageConnection; served: Promise<void>; close(): void } {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const served = serveAgent(toAgent, fromAgent);
  const connection = rpc.createMessageConnection(new rpc.StreamMessageReader(fromAgent), new rpc.StreamMessageWriter(toAgent));
  connection.listen();
  return { connection, served, close: () => (connection.dispose(), toAgent.end()) };
}

test('the agent answers start methods, methods of areas it loads later, and their errors', async () => {
  const a = agent();
  try {
    const facts = (await a.connection.sendRequest('system.facts', undefined)) as { agentVersion: string };
    assert.match(facts.agentVersion, /^\d+\.\d+\.\d+$/);
    const stat = (await a.connection.sendRequest('file.stat', { path: '/' })) as { exists: boolean; type?: string };
    assert.deepEqual([stat.exists, stat.type], [true, 'directory']);
    await assert.rejects(a.connection.sendRequest('file.read', { path: '/no/such/file' }), (e: unknown) => {
      assert.ok(e instanceof rpc.ResponseError);
      assert.equal(e.code, FERRY_ERROR_CODE);
      assert.equal((e.data as { code: string }).code, 'NOT_FOUND');
      return true;
    });
  } finally {
    a.close();
  }
  await a.served;
});

test('the agent answers an unknown method with MethodNotFound', async () => {
  const a = agent();
  try {
    await assert.rejects(a.connection.sendRequest('sync.noSuchMethod', { path: '/' }), (e: unknown) => {
      assert.ok(e instanceof rpc.ResponseError);
      assert.equal(e.code, rpc.ErrorCodes.MethodNotFound);
      return true;
    });
  } finally {
    a.close();
  }
  await a.served;
});
