/**
 * Interrupted syncs continue with --resume from the destination's durable
 * checkpoint: after the connection drops mid-way, and after kill -9 of the
 * source's or the destination's agent. Confirmed blocks are not sent again.
 * --bandwidth slows the sync enough to interrupt it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { agentHolding, ferry, makeImage, makeLab, MiB, sameContent, startFerry, type Lab } from './sync-helpers.js';

const SIZE_MIB = 96;
let lab: Lab;
before(async () => {
  lab = await makeLab('sync-resume');
  await makeImage(`${lab.dir}/src.img`, SIZE_MIB, [[0, SIZE_MIB]]);
});
after(async () => {
  await lab.cleanup();
});

async function resumeAndCheck(dst: string): Promise<void> {
  const r = await ferry(['sync', '--json', '--resume', `ha:${lab.dir}/src.img`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  const resumed = r.json.blocks_resumed as number;
  assert.ok(resumed > 0, `nothing resumed: ${JSON.stringify(r.json)}`);
  // What the checkpoint confirmed is neither compared nor sent again.
  assert.ok((r.json.bytes_sent as number) <= (SIZE_MIB - resumed) * MiB + 64 * 1024, `sent ${String(r.json.bytes_sent)} after resuming ${resumed} blocks`);
  assert.equal(r.json.verified, true);
  assert.ok(await sameContent(`${lab.dir}/src.img`, dst));
}

test('a sync whose connection drops mid-way resumes from its checkpoint', async () => {
  const dst = `${lab.dir}/drop.img`;
  const env = { ...lab.env, FERRY_SYNC_DROP_AFTER_BYTES: String(40 * MiB) };
  const r = await ferry(['sync', '--json', '--bandwidth', '40', `ha:${lab.dir}/src.img`, `hb:${dst}`], env);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.equal(r.json.code, 'ABORTED', JSON.stringify(r.json));
  assert.match(r.json.hint as string, /--resume/);
  await resumeAndCheck(dst);
});

for (const side of ['source', 'destination'] as const) {
  test(`a sync survives kill -9 of the ${side} agent and resumes`, async () => {
    const dst = `${lab.dir}/kill-${side}.img`;
    const run = startFerry(['sync', '--json', '--bandwidth', '16', `ha:${lab.dir}/src.img`, `hb:${dst}`], lab.env);
    // Let it run past a periodic checkpoint (every 2 s) or two.
    await run.confirmed(20);
    const pid = await agentHolding(run.child.pid!, side === 'source' ? `${lab.dir}/src.img` : dst);
    assert.ok(pid, `no ${side} agent found`);
    process.kill(pid, 'SIGKILL');
    const r = await run.done;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(['AGENT_GONE', 'ABORTED'].includes(r.json.code as string), JSON.stringify(r.json));
    await resumeAndCheck(dst);
  });
}

test('--resume without a checkpoint compares everything and still skips equal blocks', async () => {
  const dst = `${lab.dir}/kill-source.img`; // complete and equal by now
  const r = await ferry(['sync', '--json', '--resume', `ha:${lab.dir}/src.img`, `hb:${dst}`], lab.env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.blocks_resumed, 0);
  assert.equal(r.json.blocks_changed, 0);
  assert.match(r.stderr, /No usable checkpoint/);
});

test('Ctrl-C (SIGINT) stops a sync with a --resume hint and the resume completes it', async () => {
  const dst = `${lab.dir}/sigint.img`;
  const run = startFerry(['sync', '--bandwidth', '16', `ha:${lab.dir}/src.img`, `hb:${dst}`], lab.env);
  await run.confirmed(20);
  run.child.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.code, 130);
  assert.match(r.stderr, /--resume/);
  await resumeAndCheck(dst);
});
