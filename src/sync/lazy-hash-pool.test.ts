import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LazyHashPool } from './lazy-hash-pool.js';

test('the pool starts on first use only, once, and closes', async () => {
  const lazy = new LazyHashPool(4096, 4, 0);
  assert.equal(lazy.started, false);
  await lazy.close(); // nothing to close
  const pool = lazy.get();
  assert.equal(lazy.started, true);
  assert.equal(lazy.get(), pool);
  assert.equal(pool.threads, 0);
  const slot = await pool.acquire();
  assert.equal(slot.buf.length, 4096);
  pool.release(slot);
  await lazy.close();
});
