/**
 * Reads files of a guest mounted at `root` as the guest sees them: absolute
 * symlinks inside the guest (/etc/os-release -> /usr/lib/os-release) are
 * resolved against the guest's root, never the host's.
 */
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** The host path of a guest path, following symlinks within the guest. */
export async function guestPath(root: string, path: string): Promise<string> {
  const parts = posix.normalize(path).split('/').filter(Boolean);
  let resolved = '/';
  for (let hops = 0, i = 0; i < parts.length; i++) {
    const next = posix.join(resolved, parts[i]!);
    const st = await lstat(join(root, next)).catch(() => undefined);
    if (st?.isSymbolicLink() && hops++ < 40) {
      const target = await readlink(join(root, next));
      const base = target.startsWith('/') ? target : posix.join(resolved, target);
      parts.splice(0, i + 1, ...posix.normalize(base).split('/').filter(Boolean));
      resolved = '/';
      i = -1;
      continue;
    }
    resolved = next;
  }
  return join(root, resolved);
}

export async function readGuestFile(root: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(await guestPath(root, path), 'utf8');
  } catch {
    return undefined;
  }
}

export async function listGuestDir(root: string, dir: string): Promise<string[]> {
  try {
    return (await readdir(await guestPath(root, dir))).sort();
  } catch {
    return [];
  }
}

export async function guestFileExists(root: string, path: string): Promise<boolean> {
  return (await lstat(await guestPath(root, path)).catch(() => undefined)) !== undefined;
}
