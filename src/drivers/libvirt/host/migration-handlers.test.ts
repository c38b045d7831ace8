import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { libvirtMigrationHandlers as h } from './migration-handlers.js';

// A stand-in virsh first on PATH: `migrate` takes MIGRATE_S seconds, `domjobinfo` JOBINFO_S (as libvirt
// holds it back at the end of a job), then prints one figure.
let dir: string;
let path: string | undefined;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-virsh-'));
  writeFileSync(
    join(dir, 'virsh'),
    `#!/bin/sh
case " $* " in
  *" migrate "*) sleep "$MIGRATE_S"; exit 0 ;;
  *" domjobinfo "*) sleep "$JOBINFO_S"; printf 'Job type:         Unbounded\\nmemory_processed: 4096\\n'; exit 0 ;;
esac
exit 1
`,
  );
  chmodSync(join(dir, 'virsh'), 0o755);
  path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
});
after(() => {
  process.env.PATH = path;
  rmSync(dir, { recursive: true, force: true });
});

const start = (id: string): Promise<void> => h['libvirt.migrate.start']({ id, domain: 'd', destUri: 'qemu+tcp://127.0.0.3/system', args: ['--live'] });

test("the watch's poll gives libvirt's figures while the migration runs", async () => {
  process.env.MIGRATE_S = '3';
  process.env.JOBINFO_S = '0';
  await start('watch-running');
  const r = await h['libvirt.migrate.watch']({ id: 'watch-running', waitMs: 50 });
  assert.equal(r.running, true);
  assert.equal(r.job?.memoryProcessed, 4096);
  const end = await h['libvirt.migrate.wait']({ id: 'watch-running', waitMs: 10_000 });
  assert.equal(end.end?.exitCode, 0);
});

test('the end of the migration is told at once, not after a job figure that libvirt holds back', async () => {
  process.env.MIGRATE_S = '0.4';
  process.env.JOBINFO_S = '5';
  await start('watch-end');
  const t0 = performance.now();
  const r = await h['libvirt.migrate.watch']({ id: 'watch-end', waitMs: 50 });
  assert.equal(r.running, false);
  assert.equal(r.end?.exitCode, 0);
  assert.ok(performance.now() - t0 < 3000, `told ${Math.round(performance.now() - t0)} ms after the poll began`);
});
