/**
 * Exposes any image qemu can open (qcow2, vmdk...) as a raw regular file of
 * its guest-visible content, through qemu-storage-daemon's FUSE export. Plain
 * reads and writes on that file then go through QEMU's block layer, so sync
 * code handles every format as raw, and no nbd kernel module is needed.
 *
 * The daemon runs under a tiny shell guard that kills it when the agent's
 * pipe closes, so a killed agent never leaves the image locked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';

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
  // sh: start the daemon, wait for our stdin to close (agent gone), stop it.
  const guard = '"$@" & pid=$!; trap "kill $pid 2>/dev/null" EXIT; cat >/dev/null; kill $pid 2>/dev/null; wait $pid';
  const child = spawn('sh', ['-c', guard, 'sh', ...qsd], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (await isMounted(mountpoint)) break;
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
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
    close: () => stopGuard(child, mountpoint),
  };
}

async function stopGuard(child: ChildProcess, mountpoint: string): Promise<void> {
  if (child.exitCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
  for (let i = 0; i < 100 && (await isMounted(mountpoint)); i++) await sleep(50);
  await fs.rm(mountpoint, { force: true }).catch(() => undefined);
}

async function isMounted(path: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === path);
}

/** qemu option values escape commas by doubling them. */
function escapeOpt(v: string): string {
  return v.replace(/,/g, ',,');
}
