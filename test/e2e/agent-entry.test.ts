/**
 * Every way ferry starts an agent reaches one that answers: the transport's
 * default, the bundle, `ferry agent` as ssh hosts run it, and the CLI's
 * `agent` command that older inventories name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/hosts/agent-client.js';
import { localAgentCommand } from '../../src/hosts/transport.js';
import { CLI } from './cli.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

async function facts(agent: string[] | undefined): Promise<string> {
  const client = await AgentClient.connect({ name: 'here', transport: 'local', sshOptions: [], address: '127.0.0.1', agent });
  client.close();
  return client.facts.agentVersion;
}

test('the transport starts the lean agent entry compiled beside it', async () => {
  const [node, entry, ...rest] = localAgentCommand();
  assert.equal(node, process.execPath);
  assert.equal(entry, `${repo}dist/src/bin/agent.js`);
  assert.deepEqual(rest, []);
  assert.match(await facts(undefined), /^\d+\.\d+\.\d+$/);
});

test('the bundled agent beside the bundled CLI answers', async () => {
  const bundled = CLI.replace(/ferry\.js$/, 'agent.js');
  assert.ok(existsSync(bundled), bundled);
  assert.match(await facts([process.execPath, bundled]), /^\d+\.\d+\.\d+$/);
});

test('"ferry agent" answers, through bin/ferry and through the CLI bundle and the compiled CLI', async () => {
  assert.match(await facts([`${repo}bin/ferry`, 'agent']), /^\d+\.\d+\.\d+$/);
  assert.match(await facts([process.execPath, CLI, 'agent']), /^\d+\.\d+\.\d+$/);
  assert.match(await facts([process.execPath, `${repo}dist/src/cli/main.js`, 'agent']), /^\d+\.\d+\.\d+$/);
});
