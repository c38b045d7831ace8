import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const client = fileURLToPath(new URL('./agent-client.js', import.meta.url));

test('an agent killed in the middle of an answer: the client reports it lost, and its process still exits at once', async () => {
  // The "agent" writes half of a message (its header and part of the body), then dies.
  const agent = ['node', '-e', 'process.stdout.write("Content-Length: 200\\r\\n\\r\\n{\\"jsonrpc\\":\\"2.0\\",", () => process.exit(9))'];
  const script = `
    const { AgentClient } = await import(${JSON.stringify(client)});
    const host = { name: 'half', transport: 'local', sshOptions: [], address: '127.0.0.1', agent: ${JSON.stringify(agent)} };
    await AgentClient.connect(host).then(() => console.log('connected'), (e) => console.log(e.code));
  `;
  const started = Date.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.on('close', (c) => (clearTimeout(t), resolve(c)));
  });
  assert.match(out.trim(), /^(AGENT_GONE|UNREACHABLE)$/, 'the client says the agent is lost');
  assert.equal(code, 0, 'it exited by itself');
  assert.ok(Date.now() - started < 8000);
});

test('an agent whose output ends is gone at once, before its process is seen to exit: calls say AGENT_GONE', async () => {
  const { AgentClient } = await import('./agent-client.js');
  // Closes its stdout, then lingers: the exit comes two seconds later.
  const started = Date.now();
  const client = AgentClient.start({ name: 'mute', transport: 'local', sshOptions: [], address: '127.0.0.1', agent: ['sh', '-c', 'exec 1>&-; sleep 2'] });
  await new Promise((resolve) => client.once('close', resolve));
  assert.ok(Date.now() - started < 1500, 'lost when its output ended, not when it exited');
  assert.equal(client.closed, true);
  await assert.rejects(client.call('system.facts', undefined), (e: { code?: string }) => e.code === 'AGENT_GONE');
  client.close();
});
