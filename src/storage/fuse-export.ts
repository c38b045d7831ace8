/**
 * Exposes any image qemu can open (qcow2, vmdk...) as a raw regular file of
 * its guest-visible content, through qemu-storage-daemon's FUSE export. Plain
 * reads and writes on that file then go through QEMU's block layer, so sync
 * code handles every format as raw, and no nbd kernel module is needed.
 *
 * The daemon is guarded (guarded-daemon.ts): a killed agent never leaves
 * the image locked.
 */
import * as fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import { escapeOpt, startGuarded, type GuardedDaemon } from './guarded-daemon.js';

export interface RawExport {
  /** Regular file holding the image's guest-visible bytes. */
  rawPath: string;
  close(): Promise<void>;
}

const EXPORT_DIR = '/run/ferry/exports';

export async function exportAsRaw(image: string, format: string, writable: boolean): Promise<RawExport> {
  await fs.mkdir(EXPORT_DIR, { recursive: true });
  const mountpoint = `${EXPORT_DIR}/${randomBytes(6).toString('hex')}.raw`;
  await fs.writeFile(mountpoint, '');
  const ro = writable ? 'off' : 'on';
  // A reader shares the image with whoever holds it (a running VM): that is
  // the crash-consistent pre-seed case, flagged elsewhere.
  const share = writable ? '' : ',force-share=on';
  const qsd = [
    'qemu-storage-daemon',
    '--blockdev',
    `driver=file,filename=${escapeOpt(image)},node-name=file0,read-only=${ro}${writable ? ',discard=unmap' : ''}${share}`,
    '--blockdev',
    `driver=${format},file=file0,node-name=fmt0,read-only=${ro}${writable ? ',discard=unmap' : ''}${share}`,
    '--export',
    `type=fuse,id=exp0,node-name=fmt0,mountpoint=${mountpoint},writable=${writable ? 'on' : 'off'}`,
  ];
  const daemon = startGuarded(qsd);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (await isMounted(mountpoint)) break;
    if (daemon.exited() || Date.now() > deadline) {
      const stderr = daemon.stderr();
      daemon.child.kill('SIGKILL');
      await fs.rm(mountpoint, { force: true });
      throw new FerryError(
        /lock/i.test(stderr) ? 'IN_USE' : 'COMMAND_FAILED',
        `Cannot open image "${image}" (${format}) through qemu-storage-daemon: ${stderr.trim().split('\n').pop() ?? 'no answer'}`,
        {
          hint: /lock/i.test(stderr) ? 'another process (a running VM?) holds the image; stop it or pass --force' : 'check that the image opens with "qemu-img info"',
        },
      );
    }
    await sleep(50);
  }
  return {
    rawPath: mountpoint,
    close: () => stopGuard(daemon, mountpoint),
  };
}

async function stopGuard(daemon: GuardedDaemon, mountpoint: string): Promise<void> {
  await daemon.stop();
  for (let i = 0; i < 100 && (await isMounted(mountpoint)); i++) await sleep(50);
  await fs.rm(mountpoint, { force: true }).catch(() => undefined);
}

async function isMounted(path: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === path);
}
