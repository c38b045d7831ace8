/** Disk images on the agent's host. */
import { createImage, imageChain, type CreateImage } from '../../storage/image-info.js';
import { openReceiver, type NbdReceiver, type ReceiverImage } from '../../storage/nbd-receiver.js';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HandlerContext } from '../context.js';

const receivers = new Map<string, NbdReceiver>();

export const imageHandlers = {
  'image.chain': async (p: { path: string }) => imageChain(p.path),
  'image.create': async (p: CreateImage): Promise<void> => {
    await mkdir(dirname(p.path), { recursive: true });
    await createImage(p);
  },
  /** Serves images for writing over NBD on `address:port` until closed, or until the controller goes away. */
  'image.receive': async (p: { images: ReceiverImage[]; address: string; port: number }, ctx: HandlerContext): Promise<{ id: string; port: number }> => {
    const receiver = await openReceiver(p.images, p.address, p.port);
    receivers.set(receiver.id, receiver);
    ctx.onClose(() => receiver.close());
    return { id: receiver.id, port: receiver.port };
  },
  'image.receiveEnd': async (p: { id: string }): Promise<void> => {
    const receiver = receivers.get(p.id);
    receivers.delete(p.id);
    await receiver?.close();
  },
};
