/** File operations on the agent's host. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import { FerryError, isSystemError, messageOf } from '../../util/errors.js';
import type { HandlerContext } from '../context.js';
import { statPath, type FileStat } from '../../storage/stat.js';

export const fileHandlers = {
  'file.stat': async (p: { path: string }): Promise<FileStat> => statPath(p.path),

  'file.read': async (p: { path: string; maxBytes?: number }): Promise<{ text: string }> => {
    const buf = await fs.readFile(p.path).catch((e: unknown) => {
      throw new FerryError('NOT_FOUND', `Cannot read "${p.path}": ${isSystemError(e) ? e.code : messageOf(e)}`);
    });
    return { text: buf.subarray(0, p.maxBytes ?? buf.length).toString('utf8') };
  },

  'file.write': async (p: { path: string; text: string; mode?: number }): Promise<void> => {
    await fs.writeFile(p.path, p.text, { mode: p.mode });
  },

  'file.mkdir': async (p: { path: string }): Promise<void> => {
    await fs.mkdir(p.path, { recursive: true });
  },

  'file.remove': async (p: { path: string }): Promise<void> => {
    await fs.rm(p.path, { force: true, recursive: false });
  },

  /** Removes a directory and all it holds: one ferry named as a VM's own (its TPM's state), never a path a user typed. */
  'file.removeTree': async (p: { path: string }): Promise<void> => {
    if (!isAbsolute(p.path) || normalize(p.path).split('/').filter(Boolean).length < 3) {
      throw new FerryError('INTERNAL', `Refusing to remove the tree "${p.path}": not a VM's own directory`);
    }
    await fs.rm(p.path, { force: true, recursive: true });
  },

  /** sha256 of a file's bytes; used to prove two hosts hold the same base image. */
  'file.sha256': async (p: { path: string }, _ctx: HandlerContext): Promise<{ sha256: string; size: number }> => {
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of createReadStream(p.path, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), size };
  },

  /** Free bytes on the filesystem holding path (or its nearest existing parent). */
  'file.free': async (p: { path: string }): Promise<{ freeBytes: number; dir: string }> => {
    let dir = p.path;
    for (;;) {
      try {
        const st = await fs.statfs(dir);
        return { freeBytes: st.bavail * st.bsize, dir };
      } catch (e) {
        const parent = dir.replace(/\/[^/]*\/?$/, '') || '/';
        if (parent === dir) throw e;
        dir = parent;
      }
    }
  },
};
