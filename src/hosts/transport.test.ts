/**
 * How agents are started: the command line per transport, and the
 * environment a local agent gets (checked by starting a real process that
 * prints it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostConfig } from './inventory.js';
import { agentArgv, spawnAgent } from './transport.js';

const local = (agent: string[]): HostConfig => ({ name: 'h', transport: 'local', sshOptions: [], address: '127.0.0.1', agent });

async function printedBy(host: HostConfig): Promise<string> {
  const child = spawnAgent(host);
  child.stdin.end();
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  return out.trim();
}

test('a local agent starts without the extra CA certificates, with the rest of the environment', async () => {
  const saved = process.env.NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = '/nonexistent/ca.pem';
  process.env.FERRY_TRANSPORT_TEST = 'kept';
  try {
    assert.equal(await printedBy(local(['sh', '-c', 'echo "${NODE_EXTRA_CA_CERTS:-unset}|$FERRY_TRANSPORT_TEST"'])), 'unset|kept');
  } finally {
    delete process.env.FERRY_TRANSPORT_TEST;
    if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = saved;
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

test('ssh agents share one connection per host, unless the inventory or the user says otherwise', () => {
  const host: HostConfig = { name: 'h', transport: 'ssh', ssh: 'kvm1', sshOptions: [], address: '10.0.0.5' };
  const shared = agentArgv(host);
  assert.ok(shared.includes('ControlMaster=auto'));
  assert.ok(shared.some((a) => /^ControlPath=.+\/%C$/.test(a)));
  assert.ok(shared.includes('ControlPersist=60'));
  assert.ok(!agentArgv({ ...host, sshMultiplex: false }).includes('ControlMaster=auto'));
  const own = agentArgv({ ...host, sshOptions: ['-o', 'ControlPath=/run/my/%r@%h'] });
  assert.ok(!own.includes('ControlMaster=auto'));
  assert.ok(own.includes('ControlPath=/run/my/%r@%h'));
});
