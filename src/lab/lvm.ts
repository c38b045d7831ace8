/**
 * LVM on lab hosts. The lab hosts share /dev and the kernel's loop devices,
 * so each host's LVM would see every host's physical volumes: each gets its
 * own /etc/lvm (bound over it in the host's namespace) whose filter accepts
 * only the loop devices of its own PVs, and its own /run/lvm. A volume group
 * is a loop device over a file in the host's lab directory; its /dev/VG is a
 * tmpfs of the host's own, so that two hosts can have a VG of one name (a
 * move into "a VG of the same name") without their /dev/VG/LV links meeting.
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';

/** LVM's directories private to each lab host (bound in its namespace like the others). */
export const LVM_DIRS = ['/etc/lvm', '/run/lvm'] as const;

/** A lab host's lvm.conf: only `pvDevices` are scanned; no udev (the lab has none), no hints or devices file. */
export function labLvmConf(pvDevices: readonly string[]): string {
  const accept = pvDevices.map((d) => `"a|^${d}$|", `).join('');
  return [
    '# Written by "ferry lab": this lab host sees only its own physical volumes.',
    'devices {',
    `  global_filter = [ ${accept}"r|.*|" ]`,
    '  obtain_device_list_from_udev = 0',
    '  use_devicesfile = 0',
    '  hints = "none"',
    '}',
    'activation {',
    '  udev_sync = 0',
    '  udev_rules = 0',
    '}',
    '',
  ].join('\n');
}

interface LabPv {
  vg: string;
  device: string;
  file: string;
}

const pvsFile = (etcLvm: string): string => join(etcLvm, 'lab-pvs.json');

async function readPvs(etcLvm: string): Promise<LabPv[]> {
  try {
    return JSON.parse(await fs.readFile(pvsFile(etcLvm), 'utf8')) as LabPv[];
  } catch {
    return [];
  }
}

/** Fills a lab host's /etc/lvm (the host directory `etcDir`) for a host without PVs yet. */
export async function writeLabLvmConfig(etcDir: string): Promise<void> {
  for (const d of ['', 'backup', 'archive', 'profile']) await fs.mkdir(join(etcDir, d), { recursive: true });
  await fs.writeFile(join(etcDir, 'lvm.conf'), labLvmConf([]));
}

export interface LabVolumeGroupHost {
  name: string;
  /** The host's directory in the lab. */
  root: string;
  /** Runs a command inside the host's namespace. */
  enter: readonly string[];
}

/**
 * Gives a lab host volume group `vg` of `sizeMiB` on a loop device over a
 * file in its lab directory, its /dev/VG private to the host. Already there:
 * kept as it is. `ferry lab down` detaches the loop device (and any LV's
 * loop device over it) and removes the file.
 */
export async function labVolumeGroup(host: LabVolumeGroupHost, vg: string, sizeMiB: number): Promise<{ vg: string; device: string }> {
  const etcDir = join(host.root, 'etc_lvm');
  const pvs = await readPvs(etcDir);
  const known = pvs.find((p) => p.vg === vg);
  if (known) return { vg, device: known.device };
  const [enter, ...enterArgs] = host.enter;
  const inside = (argv: string[]): ReturnType<typeof run> => run(enter!, [...enterArgs, ...argv], { allowFailure: true, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  const file = join(host.root, `pv-${vg}.img`);
  await fs.writeFile(file, '');
  await fs.truncate(file, sizeMiB * 2 ** 20);
  const loop = await run('losetup', ['--find', '--show', file], { allowFailure: true });
  if (loop.exitCode !== 0) throw new FerryError('LAB', `Cannot attach a loop device to ${file}: ${loop.stderr.trim()}`, { hint: 'check free loop devices: losetup -f' });
  const device = loop.stdout.trim();
  pvs.push({ vg, device, file });
  await fs.writeFile(pvsFile(etcDir), JSON.stringify(pvs));
  await fs.writeFile(join(etcDir, 'lvm.conf'), labLvmConf(pvs.map((p) => p.device)));
  // vgcreate refuses a name /dev/VG already has, which another lab host's VG of that name made on the shared /dev: it runs where /dev holds only what it needs.
  const create = [
    'set -e',
    `nodes="$(stat -c '%Hr %Lr' ${device})"`,
    'unshare -m --propagation private sh -ec "',
    '  mount -t tmpfs ferry-lab-vgcreate /dev',
    '  mknod -m 666 /dev/null c 1 3; mknod -m 444 /dev/urandom c 1 9',
    `  mknod ${device} b $nodes`,
    `  pvcreate -q ${device}; vgcreate -q ${vg} ${device}"`,
  ].join('\n');
  for (const argv of [
    ['sh', '-c', create],
    ['sh', '-c', `mkdir -p /dev/${vg} && mount -t tmpfs -o size=1m,mode=0755 ferry-lab-${vg} /dev/${vg}`],
  ]) {
    const r = await inside(argv);
    if (r.exitCode !== 0)
      throw new FerryError('LAB', `Cannot make volume group "${vg}" on lab host "${host.name}": ${r.stderr.trim().split('\n').pop()}`, { hint: `see ferry lab exec ${host.name} -- pvs` });
  }
  return { vg, device };
}

/**
 * Removes volume group `vg` from a lab host with its LVs, its /dev/VG and
 * its loop devices. While two hosts have a VG of one name, the machine's
 * own LVM (which sees every lab PV) warns of the duplicate on every call:
 * whoever made them removes them when done.
 */
export async function removeLabVolumeGroup(host: LabVolumeGroupHost, vg: string): Promise<void> {
  const etcDir = join(host.root, 'etc_lvm');
  const pvs = await readPvs(etcDir);
  const pv = pvs.find((p) => p.vg === vg);
  if (!pv) return;
  const [enter, ...enterArgs] = host.enter;
  const inside = (script: string): ReturnType<typeof run> => run(enter!, [...enterArgs, 'sh', '-c', script], { allowFailure: true, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  // Each LV's link names its loop device (lab LVs are active without device-mapper).
  await inside(`for l in /dev/${vg}/*; do [ -L "$l" ] && losetup -d "$(readlink "$l")"; rm -f "$l"; done; umount /dev/${vg}; vgremove -f --driverloaded n ${vg}; pvremove -q ${pv.device}`);
  await run('losetup', ['-d', pv.device], { allowFailure: true });
  await fs.rm(pv.file, { force: true });
  const rest = pvs.filter((p) => p !== pv);
  await fs.writeFile(pvsFile(etcDir), JSON.stringify(rest));
  await fs.writeFile(join(etcDir, 'lvm.conf'), labLvmConf(rest.map((p) => p.device)));
  // /dev is shared: removing /dev/VG would also take away another lab host's tmpfs there, were it still using that name.
  const hosts = await fs.readdir(dirname(host.root)).catch(() => [] as string[]);
  const others = (await Promise.all(hosts.map((h) => readPvs(join(dirname(host.root), h, 'etc_lvm'))))).flat();
  if (!others.some((p) => p.vg === vg)) await fs.rmdir(`/dev/${vg}`).catch(() => undefined);
}

/**
 * For `ferry lab down`: the lab hosts' VGs' loop devices, and the loop
 * devices over them (LVs activated without device-mapper), are detached;
 * each /dev/VG the hosts mounted a tmpfs on is removed.
 */
export async function releaseLabVolumeGroups(hostRoots: readonly string[]): Promise<void> {
  const pvs = (await Promise.all(hostRoots.map((r) => readPvs(join(r, 'etc_lvm'))))).flat();
  if (!pvs.length) return;
  const list = await run('losetup', ['-J', '-l'], { allowFailure: true });
  let loops: Array<{ name: string; 'back-file'?: string }> = [];
  try {
    loops = (JSON.parse(list.stdout || '{"loopdevices":[]}') as { loopdevices: typeof loops }).loopdevices;
  } catch {
    // no loop devices
  }
  // An LV's loop device attached inside a lab host names its PV's loop device as that host saw it: "/dev/loopN" while the host
  // lives, "/loopN" once its mount namespace is gone (the kernel prints the path from a /dev no longer mounted anywhere).
  const devices = new Set(pvs.flatMap((p) => [p.device, p.device.replace(/^\/dev/, '')]));
  for (const l of loops) if (l['back-file'] && devices.has(l['back-file'].trim())) await run('losetup', ['-d', l.name], { allowFailure: true });
  for (const p of pvs) {
    const still = loops.find((l) => l.name === p.device && l['back-file']?.trim() === p.file);
    if (still) await run('losetup', ['-d', p.device], { allowFailure: true });
    if (existsSync(`/dev/${p.vg}`)) await fs.rmdir(`/dev/${p.vg}`).catch(() => undefined);
  }
}
