/**
 * How agents are started: the command line per transport, and the
 * environment a local agent gets (checked by starting a real process that
 * prints it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostConfig } from './inventory.js';
import { AGENT_MALLOC_TUNING, agentArgv, spawnAgent } from './transport.js';

const local = (agent: string[]): HostConfig => ({ name: 'h', transport: 'local', sshOptions: [], address: '127.0.0.1', agent });

async function printedBy(host: HostConfig): Promise<string> {
  const child = spawnAgent(host);
  child.stdin.end();
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  return out.trim();
}

test('a local agent keeps freed memory for reuse and skips the extra CA certificates', async () => {
  const saved = { tunables: process.env.GLIBC_TUNABLES, ca: process.env.NODE_EXTRA_CA_CERTS };
  delete process.env.GLIBC_TUNABLES;
  process.env.NODE_EXTRA_CA_CERTS = '/nonexistent/ca.pem';
  try {
    assert.equal(await printedBy(local(['sh', '-c', 'echo "$GLIBC_TUNABLES|${NODE_EXTRA_CA_CERTS:-unset}"'])), `${AGENT_MALLOC_TUNING}|unset`);
    // A tuning of the user's own is left as it is.
    process.env.GLIBC_TUNABLES = 'glibc.malloc.arena_max=2';
    assert.equal(await printedBy(local(['sh', '-c', 'echo "$GLIBC_TUNABLES"'])), 'glibc.malloc.arena_max=2');
  } finally {
    if (saved.tunables === undefined) delete process.env.GLIBC_TUNABLES;
    else process.env.GLIBC_TUNABLES = saved.tunables;
    if (saved.ca === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = saved.ca;
  }
});

test('an ssh host runs `ferry agent` through ssh, its arguments quoted for the remote shell', () => {
  const argv = agentArgv({ name: 'h', transport: 'ssh', ssh: 'root@10.0.0.5', sshOptions: ['-p', '2222'], address: '10.0.0.5', agent: ['/opt/my ferry/bin/ferry', 'agent'] });
  assert.deepEqual(argv.slice(0, 2), ['ssh', '-T']);
  assert.ok(argv.includes('BatchMode=yes'));
  const dest = argv.indexOf('root@10.0.0.5');
  assert.deepEqual(argv.slice(dest - 2, dest), ['-p', '2222']);
  assert.deepEqual(argv.slice(dest + 1), ['--', `'/opt/my ferry/bin/ferry'`, 'agent']);
});
