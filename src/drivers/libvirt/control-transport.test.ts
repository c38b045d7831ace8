import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../util/errors.js';
import { checkControlTransport, plainTcpHost } from './control-transport.js';

test('plain TCP is qemu+tcp alone: its host, empty for this machine', () => {
  assert.equal(plainTcpHost('qemu+tcp://kvm2/system'), 'kvm2');
  assert.equal(plainTcpHost('qemu+tcp://127.0.0.3:16509/system'), '127.0.0.3');
  assert.equal(plainTcpHost('qemu+tcp://[::1]/system'), '[::1]');
  assert.equal(plainTcpHost('qemu+tcp:///system'), '');
  for (const uri of ['qemu+ssh://root@kvm2/system', 'qemu+tls://kvm2/system', 'qemu://kvm2/system', 'qemu:///system', 'qemu+libssh2://kvm2/system', 'not a uri']) {
    assert.equal(plainTcpHost(uri), undefined, uri);
  }
});

const noResolve = async (): Promise<string[]> => assert.fail('no name to resolve');
const refused = (e: unknown): boolean => e instanceof FerryError && e.code === 'INSECURE_TRANSPORT' && /auth_tcp = "none"/.test(e.message) && /qemu\+ssh is the default/.test(e.hint ?? '');

test('qemu+tcp to a libvirt without authentication is refused off loopback, with ssh and TLS named', async () => {
  await assert.rejects(checkControlTransport('qemu+tcp://192.0.2.1/system', 'kvm2', 'none', noResolve), refused);
  await assert.rejects(
    checkControlTransport('qemu+tcp://kvm2/system', 'kvm2', 'none', async (name) => (name === 'kvm2' ? ['10.0.0.2'] : [])),
    refused,
  );
  // A name the source cannot resolve is no proof it stays local.
  await assert.rejects(
    checkControlTransport('qemu+tcp://kvm2/system', 'kvm2', 'none', async () => []),
    refused,
  );
  await assert.rejects(
    checkControlTransport('qemu+tcp://kvm2/system', 'kvm2', 'none', async () => ['127.0.0.1', '10.0.0.2']),
    refused,
  );
});

test('accepted: loopback (the lab), a name that resolves to loopback alone, a target that authenticates TCP clients, any other transport', async () => {
  await checkControlTransport('qemu+tcp://127.0.0.3/system', 'lab-b', 'none', noResolve);
  await checkControlTransport('qemu+tcp://[::1]/system', 'lab-b', 'none', noResolve);
  await checkControlTransport('qemu+tcp:///system', 'lab-b', 'none', noResolve);
  await checkControlTransport('qemu+tcp://lab-b/system', 'lab-b', 'none', async () => ['127.0.0.3']);
  await checkControlTransport('qemu+tcp://kvm2/system', 'kvm2', 'sasl', noResolve);
  await checkControlTransport('qemu+ssh://kvm2/system', 'kvm2', undefined, noResolve);
});
