import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { setHostName, thisHost } from './host-name.js';

test("an agent names its host by the machine's hostname until the controller gives the name it knows it by", () => {
  assert.equal(thisHost(), hostname());
  setHostName(undefined);
  assert.equal(thisHost(), hostname());
  setHostName('kvm2');
  assert.equal(thisHost(), 'host "kvm2"');
  setHostName('');
  assert.equal(thisHost(), 'host "kvm2"', 'an empty name changes nothing');
});
