import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEndpointSpec } from './endpoint-spec.js';

test('parseEndpointSpec tells host paths from local ones', () => {
  assert.deepEqual(parseEndpointSpec('kvm1:/var/lib/a.qcow2'), { host: 'kvm1', path: '/var/lib/a.qcow2' });
  assert.deepEqual(parseEndpointSpec('/var/tmp/a:b.img'), { path: '/var/tmp/a:b.img' });
  assert.deepEqual(parseEndpointSpec('disk.img', '/srv'), { path: '/srv/disk.img' });
});
