/**
 * Target images opened for writing over NBD while no VM runs on them: the
 * receiving end of a warm move's pre-copy. qemu-storage-daemon serves each
 * image as a writable export; the source's QEMU pushes the blocks into it.
 * Every write is flushed before it is acknowledged (writethrough), so a
 * block the source counts as sent survives a crash or reboot of this host.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import { escapeOpt, startGuarded } from './guarded-daemon.js';

export interface ReceiverImage {
  path: string;
  format: string;
  /** The export's name, which the sender asks for. */
  name: string;
  /** A block device (an LV): QEMU opens it with host_device, its file driver refusing anything but a regular file. */
  device?: boolean;
}

export interface NbdReceiver {
  readonly id: string;
  readonly port: number;
  close(): Promise<void>;
}

export function receiverArgv(images: readonly ReceiverImage[], address: string, port: number): string[] {
  const argv = ['qemu-storage-daemon'];
  images.forEach((img, i) => {
    argv.push('--blockdev', `driver=${img.device ? 'host_device' : 'file'},filename=${escapeOpt(img.path)},node-name=file${i},discard=unmap`);
    argv.push('--blockdev', `driver=${img.format},file=file${i},node-name=disk${i},discard=unmap`);
  });
  argv.push('--nbd-server', `addr.type=inet,addr.host=${address},addr.port=${port}`);
  images.forEach((img, i) => argv.push('--export', `type=nbd,id=export${i},node-name=disk${i},name=${escapeOpt(img.name)},writable=on,writethrough=on`));
  return argv;
}

export async function openReceiver(images: readonly ReceiverImage[], address: string, port: number): Promise<NbdReceiver> {
  const kinds = await Promise.all(images.map((img) => stat(img.path).catch(() => undefined)));
  const daemon = startGuarded(
    receiverArgv(
      images.map((img, i) => ({ ...img, device: kinds[i]?.isBlockDevice() ?? false })),
      address,
      port,
    ),
  );
  const deadline = Date.now() + 15_000;
  while (!(await accepts(address, port))) {
    if (daemon.exited() || Date.now() > deadline) {
      await daemon.stop(0);
      const stderr = daemon.stderr();
      const locked = /lock/i.test(stderr);
      throw new FerryError(
        locked ? 'IN_USE' : 'COMMAND_FAILED',
        `Cannot open ${images.map((i) => i.path).join(', ')} for the pre-copy: ${stderr.trim().split('\n').pop() || 'qemu-storage-daemon did not start'}`,
        {
          hint: locked ? 'another process (a VM?) holds the image on the target; stop it' : 'check that the images open with "qemu-img info" on the target',
        },
      );
    }
    await sleep(50);
  }
  return { id: randomBytes(6).toString('hex'), port, close: () => daemon.stop() };
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
