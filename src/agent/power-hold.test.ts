import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HandlerContext } from './context.js';
import { holdPowerOff, releasePowerHold, settlePowerHold } from './power-hold.js';

process.env.FERRY_HOLD_DIR = mkdtempSync(join(tmpdir(), 'ferry-holds-'));
const dir = process.env.FERRY_HOLD_DIR;

/** A controller connection: `close()` runs what the handlers registered, as the agent does when it goes away. */
function connection(): { ctx: HandlerContext; close: () => Promise<void> } {
  const cleanups: Array<() => void | Promise<void>> = [];
  return {
    ctx: { notify: () => undefined, onClose: (c) => void cleanups.push(c) },
    close: async () => {
      for (const c of cleanups) await c();
    },
  };
}

test('a held VM is started again by its agent when the controller goes away, and the hold is gone afterwards', async () => {
  const { ctx, close } = connection();
  const started: number[] = [];
  holdPowerOff('m1', 60_000, ctx, async (deadline) => void started.push(deadline));
  assert.ok(existsSync(join(dir, 'm1.json')), 'the hold is written down for another agent to find');
  await close();
  assert.equal(started.length, 1);
  assert.ok(started[0]! > Date.now(), 'with the deadline of the power-off under way');
  assert.equal(existsSync(join(dir, 'm1.json')), false);
});

test('a released VM is not started again, by its agent or another', async () => {
  const { ctx, close } = connection();
  let started = 0;
  holdPowerOff('m2', 60_000, ctx, async () => void started++);
  releasePowerHold('m2');
  await close();
  assert.equal(await settlePowerHold('m2', async () => void started++), 'none');
  assert.equal(started, 0);
});

test("a dead agent's hold is taken over: the VM is started again once, here", async () => {
  writeFileSync(join(dir, 'm3.json'), JSON.stringify({ pid: 999_999_999, deadline: Date.now() + 1000 }));
  let started = 0;
  assert.equal(await settlePowerHold('m3', async () => void started++), 'taken-over');
  assert.equal(started, 1);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.startsWith('m3')),
    [],
  );
});

test('a living holder is waited for, not raced: the VM is started by it alone', async () => {
  const holder = spawn('sleep', ['30']);
  try {
    writeFileSync(join(dir, 'm4.json'), JSON.stringify({ pid: holder.pid, deadline: Date.now() + 60_000 }));
    // The holder acts (here: drops its record) a little later.
    setTimeout(() => rmSync(join(dir, 'm4.json')), 100);
    let started = 0;
    assert.equal(await settlePowerHold('m4', async () => void started++, { pollMs: 10 }), 'holder');
    assert.equal(started, 0);
  } finally {
    holder.kill();
  }
});

test("this agent's own hold, after a stop that failed, is acted on at once", async () => {
  const { ctx, close } = connection();
  let started = 0;
  holdPowerOff('m5', 60_000, ctx, async () => void started++);
  assert.equal(await settlePowerHold('m5', async () => void started++), 'taken-over');
  await close();
  assert.equal(started, 1, 'and not again when the controller goes away');
});
