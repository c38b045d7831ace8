import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authTcpOf, weakestAuthTcp } from './libvirtd-conf.js';

test("auth_tcp: the file's last setting; libvirt's default (sasl) when commented out, absent or no file", () => {
  assert.equal(authTcpOf('listen_tcp = 1\nauth_tcp = "none"\n'), 'none');
  assert.equal(authTcpOf('  auth_tcp="sasl"\nauth_tcp = "none"'), 'none');
  assert.equal(authTcpOf('#auth_tcp = "none"\n# auth_tcp = "none"\n'), 'sasl');
  assert.equal(authTcpOf('auth_tls = "none"\n'), 'sasl');
  assert.equal(authTcpOf(undefined), 'sasl');
});

test('of libvirtd.conf and virtproxyd.conf, one that takes TCP clients unauthenticated decides', () => {
  assert.equal(weakestAuthTcp(['auth_tcp = "sasl"', 'auth_tcp = "none"']), 'none');
  assert.equal(weakestAuthTcp([undefined, undefined]), 'sasl');
  assert.equal(weakestAuthTcp(['auth_tcp = "polkit"', undefined]), 'polkit');
});
