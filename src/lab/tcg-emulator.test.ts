import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labTcgEmulatorScript } from './tcg-emulator.js';

test("the lab's TCG emulator takes 8 KiB off -m and off the pc.ram backend, and passes every other argument as it is", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tcg-emulator-'));
  try {
    const script = join(dir, 'qemu');
    // printf stands in for QEMU: the script's exec shows what QEMU would be given.
    writeFileSync(script, labTcgEmulatorScript("printf '%s\\n'"), { mode: 0o755 });
    const out = execFileSync(
      script,
      [
        '-name',
        'guest=x',
        '-m',
        '256',
        '-object',
        '{"qom-type":"memory-backend-ram","id":"pc.ram","size":268435456}',
        '-object',
        '{"qom-type":"memory-backend-ram","id":"other","size":1048576}',
        '-smp',
        '1',
      ],
      {
        encoding: 'utf8',
      },
    );
    assert.deepEqual(out.trim().split('\n'), [
      '-name',
      'guest=x',
      '-m',
      '262136k',
      '-object',
      '{"qom-type":"memory-backend-ram","id":"pc.ram","size":268427264}',
      '-object',
      '{"qom-type":"memory-backend-ram","id":"other","size":1048576}',
      '-smp',
      '1',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
