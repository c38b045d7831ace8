import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FerryError } from '../../util/errors.js';
import { fileHandlers } from './files.js';

test('file.removeTree removes a directory with all it holds, and refuses a path near the root', async () => {
  await mkdir(join(tmpdir(), 'ferry-tests'), { recursive: true });
  const dir = await mkdtemp(join(tmpdir(), 'ferry-tests', 'tree-'));
  await mkdir(join(dir, 'tpm2'));
  await writeFile(join(dir, 'tpm2', '.lock'), '');
  await fileHandlers['file.removeTree']({ path: dir });
  assert.equal(existsSync(dir), false);
  for (const path of ['/', '/var', '/var/lib', 'relative/to/somewhere']) await assert.rejects(fileHandlers['file.removeTree']({ path }), (e: unknown) => e instanceof FerryError, path);
});
