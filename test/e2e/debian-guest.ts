/**
 * The Debian guest set up as a Xen domU (guest-debian-image.sh): built once
 * per machine and kept outside the repository, in FERRY_CACHE_DIR.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/util/exec.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface DebianGuest {
  /** The raw disk image: copy it, never boot it in place. */
  disk: string;
  /** What the build planted: the Xen MAC eth0 is bound to, its static address, the root file system's UUID. */
  facts: { oldMac: string; address: string; rootUuid: string };
}

export async function ensureDebianGuest(): Promise<DebianGuest> {
  const dir = join(process.env.FERRY_CACHE_DIR ?? '/var/cache/ferry', 'guest-debian');
  if (!existsSync(join(dir, 'disk.raw'))) {
    // About a minute with a near mirror; the script renames its result into place when it is whole.
    await mkdir(dirname(dir), { recursive: true });
    await run('bash', [join(repo, 'test/e2e/guest-debian-image.sh'), dir], { timeoutMs: 25 * 60_000 });
  }
  return { disk: join(dir, 'disk.raw'), facts: JSON.parse(await readFile(join(dir, 'facts.json'), 'utf8')) as DebianGuest['facts'] };
}
