/** Disk images on the agent's host. */
import { createImage, imageChain, type CreateImage } from '../../storage/image-info.js';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export const imageHandlers = {
  'image.chain': async (p: { path: string }) => imageChain(p.path),
  'image.create': async (p: CreateImage): Promise<void> => {
    await mkdir(dirname(p.path), { recursive: true });
    await createImage(p);
  },
};
