import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addAreas, areas, findHandler, startHandlers } from './registry.js';
import { driverHostAreas } from '../drivers/host-areas.js';
import { labHostAreas } from '../lab/host-areas.js';

// As the agent's entry point composes them on a lab host.
addAreas([...driverHostAreas, ...labHostAreas]);

test('every handler of an area is named with one of its prefixes, so that a call loads that area alone', async () => {
  for (const area of areas) {
    const handlers = await area.load();
    assert.ok(Object.keys(handlers).length > 0);
    for (const method of Object.keys(handlers)) {
      assert.ok(
        area.prefixes.some((p) => method.startsWith(p)),
        `"${method}" has none of the prefixes ${area.prefixes.join(', ')}`,
      );
    }
  }
});

test('no prefix names two areas, and no area answers a start method', async () => {
  const prefixes = areas.flatMap((a) => a.prefixes);
  assert.equal(new Set(prefixes).size, prefixes.length);
  for (const area of areas) {
    for (const method of Object.keys(await area.load())) assert.ok(!Object.hasOwn(startHandlers, method), method);
  }
});

test('findHandler finds methods of every area and nothing for an unknown one', async () => {
  for (const method of ['sync.inspect', 'file.stat', 'qmp.open', 'qemu.list', 'process.holding', 'image.chain', 'migration.records', 'lab.checkRecords', 'guest.inspect']) {
    assert.equal(typeof (await findHandler(method)), 'function', method);
  }
  assert.equal(await findHandler('sync.noSuchMethod'), undefined);
  assert.equal(await findHandler('nothing.here'), undefined);
});
