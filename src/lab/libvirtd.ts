/**
 * The libvirtd of a lab host: its configuration, and starting it (with the
 * virtlogd it needs) inside the host's namespace, where /etc/libvirt,
 * /var/lib/libvirt, /var/log/libvirt and /run/libvirt are the host's own.
 * It listens on the host's loopback address over TCP, so that two lab hosts
 * can migrate libvirt domains between them as two machines would.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import { processAlive, run } from '../util/exec.js';
import { hostPidOf } from './namespace-pid.js';
import { runInside } from './inside.js';

/** What libvirtd reads, and what its QEMU driver keeps, per lab host. */
export const LIBVIRT_DIRS = ['/etc/libvirt', '/var/lib/libvirt', '/var/log/libvirt', '/run/libvirt'] as const;

export const LIBVIRT_TCP_PORT = 16509;

export interface LabLibvirtd {
  /** Host PIDs (not the namespace's). */
  libvirtdPid: number;
  virtlogdPid: number;
  /** The libvirtd's host_uuid, distinct per lab host. */
  hostUuid: string;
}

/** libvirtd.conf of a lab host: plain TCP without authentication, on the host's loopback address only. */
export function labLibvirtdConf(address: string, hostUuid: string): string {
  return [
    '# Written by "ferry lab up": a lab host, reached on loopback only.',
    'listen_tcp = 1',
    'listen_tls = 0',
    `listen_addr = "${address}"`,
    'auth_tcp = "none"',
    // Two libvirtds with one UUID refuse to migrate: "attempt to migrate guest to the same host".
    `host_uuid = "${hostUuid}"`,
    '',
  ].join('\n');
}

/** qemu.conf of a lab host. */
export function labQemuConf(address: string): string {
  return [
    '# Written by "ferry lab up".',
    // No libvirt-qemu user, no labels: the lab's images and consoles belong to root.
    'user = "root"',
    'group = "root"',
    'security_driver = "none"',
    'remember_owner = 0',
    // The lab hosts share one cgroup tree, where their domains' cgroups (qemu-1-NAME) would collide.
    'cgroup_controllers = [ ]',
    // QEMU sees the host's own /dev: a block disk at /dev/VG/LV is a link to a loop device (no device-mapper here) that a private /dev would have to copy.
    'namespaces = [ ]',
    // An incoming migration listens on this host's address, and a source reaches it there without --migrateuri.
    `migration_address = "${address}"`,
    `migration_host = "${address}"`,
    '',
  ].join('\n');
}

export interface LabLibvirtdHost {
  name: string;
  address: string;
  /** Host PID of the namespace's init. */
  pid: number;
  /** The host's directory in the lab: its pid files go here. */
  root: string;
  /** Runs a command inside the namespace. */
  enter: readonly string[];
}

/**
 * Fills a lab host's /etc/libvirt (the host directory `etcDir`, bound over
 * /etc/libvirt in the namespace): this machine's libvirt client defaults plus
 * the lab's libvirtd.conf and qemu.conf, which replace Debian's (all comments).
 */
export async function writeLabLibvirtConfig(etcDir: string, address: string): Promise<string> {
  await fs.mkdir(etcDir, { recursive: true });
  if (existsSync('/etc/libvirt')) await fs.cp('/etc/libvirt', etcDir, { recursive: true, force: true });
  const hostUuid = randomUUID();
  await fs.writeFile(join(etcDir, 'libvirtd.conf'), labLibvirtdConf(address, hostUuid));
  await fs.writeFile(join(etcDir, 'qemu.conf'), labQemuConf(address));
  return hostUuid;
}

/** Starts virtlogd and libvirtd inside a lab host and waits until libvirtd answers on its socket and on TCP. */
export async function startLabLibvirtd(host: LabLibvirtdHost, hostUuid: string, timeoutMs = 60_000): Promise<LabLibvirtd> {
  const virtlogdPidFile = join(host.root, 'virtlogd.pid');
  // Without it libvirtd starts, then gives up initialising its QEMU driver: refuse early instead.
  if (!/^libvirt-qemu:/m.test(await fs.readFile('/etc/passwd', 'utf8')))
    throw new FerryError('LAB', `Cannot start libvirtd on lab host "${host.name}": the user "libvirt-qemu" does not exist`, { hint: 'run scripts/setup.sh (npm run setup) as root' });
  try {
    await inside(host, ['virtlogd', '-d', '-p', virtlogdPidFile]);
  } catch (e) {
    throw new FerryError('LAB', `Cannot start virtlogd on lab host "${host.name}": ${(e as Error).message}`, { hint: failureHint(host), cause: e });
  }
  const libvirtdPid = await startLibvirtd(host, timeoutMs);
  return { libvirtdPid, virtlogdPid: await hostPidOf(host.pid, await _readPid(virtlogdPidFile)), hostUuid };
}

/** What a test changes in a lab host's libvirtd: its host UUID, CPU models its libvirt does not know (as an older libvirt). */
export interface LabLibvirtdChange {
  hostUuid: string;
  withoutCpuModels?: readonly string[];
}

const CPU_MAP = '/usr/share/libvirt/cpu_map';

/**
 * Restarts a lab host's libvirtd with `change` applied (its domains run on:
 * libvirtd reconnects to their QEMUs), for the checks that need two hosts
 * to differ the way two real machines do. Returns the new libvirtd's host PID.
 */
export async function restartLabLibvirtd(host: LabLibvirtdHost, libvirtdPid: number, change: LabLibvirtdChange, timeoutMs = 60_000): Promise<number> {
  try {
    process.kill(libvirtdPid, 'SIGTERM');
  } catch {
    // already gone
  }
  for (let i = 0; i < 200 && processAlive(libvirtdPid); i++) await sleep(50);
  if (processAlive(libvirtdPid)) throw new FerryError('LAB', `libvirtd on lab host "${host.name}" did not stop`, { hint: `kill ${libvirtdPid}` });
  await fs.writeFile(join(host.root, 'etc_libvirt', 'libvirtd.conf'), labLibvirtdConf(host.address, change.hostUuid));
  await inside(host, ['umount', CPU_MAP], true);
  if (change.withoutCpuModels?.length) {
    const map = join(host.root, 'cpu_map');
    await fs.rm(map, { recursive: true, force: true });
    await fs.cp(CPU_MAP, map, { recursive: true });
    const index = join(map, 'index.xml');
    const unknown = new Set(change.withoutCpuModels.map((m) => `x86_${m}.xml`));
    const lines = (await fs.readFile(index, 'utf8')).split('\n').filter((l) => ![...unknown].some((f) => l.includes(`'${f}'`)));
    await fs.writeFile(index, lines.join('\n'));
    await inside(host, ['mount', '--bind', map, CPU_MAP]);
  }
  return startLibvirtd(host, timeoutMs);
}

function inside(host: LabLibvirtdHost, argv: string[], allowFailure = false): ReturnType<typeof run> {
  return runInside(host, argv, { allowFailure });
}

function failureHint(host: LabLibvirtdHost): string {
  return `read ${join(host.root, 'var_log_libvirt')}/; libvirtd needs the packages libvirt-daemon libvirt-daemon-driver-qemu and the user libvirt-qemu (scripts/setup.sh)`;
}

/** Starts libvirtd inside the host, waits until it answers on its socket and on TCP, and returns its host PID. */
async function startLibvirtd(host: LabLibvirtdHost, timeoutMs: number): Promise<number> {
  const libvirtdPidFile = join(host.root, 'libvirtd.pid');
  try {
    await inside(host, ['libvirtd', '-d', '--listen', '-p', libvirtdPidFile]);
  } catch (e) {
    throw new FerryError('LAB', `Cannot start libvirtd on lab host "${host.name}": ${(e as Error).message}`, { hint: failureHint(host), cause: e });
  }
  const deadline = Date.now() + timeoutMs;
  const tcp = `qemu+tcp://${host.address}/system`;
  for (;;) {
    const local = await inside(host, ['virsh', '-c', 'qemu:///system', 'version'], true);
    const remote = local.exitCode === 0 ? await run('virsh', ['-c', tcp, 'version'], { allowFailure: true }) : local;
    if (remote.exitCode === 0) break;
    if (Date.now() > deadline || !existsSync(libvirtdPidFile))
      throw new FerryError('LAB', `libvirtd on lab host "${host.name}" did not answer on ${tcp}: ${remote.stderr.trim().split('\n').pop()}`, {
        hint: `${failureHint(host)}; is port ${LIBVIRT_TCP_PORT} on ${host.address} free?`,
      });
    await sleep(100);
  }
  return hostPidOf(host.pid, await _readPid(libvirtdPidFile));
}

async function _readPid(file: string): Promise<number> {
  return Number((await fs.readFile(file, 'utf8')).trim());
}
