/**
 * The lab: simulated hypervisor hosts on one machine. Each lab host is a
 * mount + PID namespace held open by a small init process: it sees its own
 * files under /var/lib/ferry, /var/lib/libvirt (images included), /etc/libvirt
 * and /run/ferry (the same paths hold different files on each host, as on two
 * machines), only its own processes (so only its own VMs), and binds its
 * listeners to its own loopback address. Each runs its own libvirtd. One
 * directory, LAB_SHARED_DIR, is the same on both, as shared storage would be.
 * lab-a is reached by the local transport (nsenter), lab-b through a real sshd
 * listening on its loopback address.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { labDir } from '../hosts/inventory.js';
import { localAgentCommand } from '../hosts/transport.js';
import { sleep } from '../util/abort.js';
import { FerryError } from '../util/errors.js';
import { processAlive as alive, run } from '../util/exec.js';
import { hostPidOf } from './namespace-pid.js';
import { writeLabTcgEmulator } from './tcg-emulator.js';
import { LIBVIRT_DIRS, restartLabLibvirtd, startLabLibvirtd, writeLabLibvirtConfig, type LabLibvirtdChange } from './libvirtd.js';
import { changeLabHostQemu, type LabQemuChange } from './qemu-binary.js';
import { changeLabHostNetView } from './net-view.js';
import { labVolumeGroup, LVM_DIRS, releaseLabVolumeGroups, removeLabVolumeGroup, writeLabLvmConfig } from './lvm.js';

export interface LabHostSpec {
  name: string;
  address: string;
  transport: 'local' | 'ssh';
}

/** FERRY_LAB_ADDRESSES=A,B moves the lab to other loopback addresses, so that a second lab (with its own FERRY_LAB_DIR and FERRY_LAB_SSH_PORT) can run beside the first. */
const [addressA, addressB] = (process.env.FERRY_LAB_ADDRESSES ?? '127.0.0.2,127.0.0.3').split(',');

export const LAB_HOSTS: readonly LabHostSpec[] = [
  { name: 'lab-a', address: addressA ?? '127.0.0.2', transport: 'local' },
  { name: 'lab-b', address: addressB ?? '127.0.0.3', transport: 'ssh' },
];

/** Directories private to each lab host, in mount order (a directory before those inside it). */
export const PRIVATE_DIRS = ['/var/lib/ferry', '/run/ferry', ...LIBVIRT_DIRS, '/var/lib/libvirt/images', ...LVM_DIRS];

/** What bash reads at an ssh login (non-interactive, it still reads .bashrc) or a login shell. */
const SHELL_STARTUP_FILES = ['.bashrc', '.profile', '.bash_profile', '.bash_login'];

/** The same directory on every lab host, standing in for shared storage (NFS, iSCSI). */
export const LAB_SHARED_DIR = '/var/lib/ferry-shared';

export const LAB_SSH_PORT = Number(process.env.FERRY_LAB_SSH_PORT ?? 2222);

export interface LabHostState extends LabHostSpec {
  /** Host PID of the namespace's init. */
  pid: number;
  root: string;
  /** Host PIDs of the host's libvirtd and virtlogd. */
  libvirtdPid: number;
  virtlogdPid: number;
  /** The libvirtd's host_uuid. */
  hostUuid: string;
}

export interface LabState {
  dir: string;
  hosts: LabHostState[];
  sshdPid?: number;
}

const stateFile = (): string => join(labDir(), 'state.json');

function isLabState(value: unknown): value is LabState {
  return typeof value === 'object' && value !== null && 'dir' in value && typeof value.dir === 'string' && 'hosts' in value && Array.isArray(value.hosts);
}

export async function labState(): Promise<LabState | undefined> {
  try {
    const state: unknown = JSON.parse(await fs.readFile(stateFile(), 'utf8'));
    return isLabState(state) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** True when every lab host's namespace is still held and its libvirtd runs. */
export async function labIsUp(): Promise<boolean> {
  const state = await labState();
  return !!state && state.hosts.every((host) => alive(host.pid) && alive(host.libvirtdPid)) && (state.sshdPid === undefined || alive(state.sshdPid));
}

export function nsenterPrefix(pid: number): string[] {
  return ['nsenter', '-t', String(pid), '-m', '-p', '--'];
}

export async function labHost(name: string): Promise<LabHostState> {
  const state = await labState();
  if (!state) throw new FerryError('LAB', 'The lab is not up', { hint: 'run "ferry lab up"' });
  const host = state.hosts.find((x) => x.name === name);
  if (!host) throw new FerryError('UNKNOWN_HOST', `Unknown lab host "${name}"`, { hint: `lab hosts: ${state.hosts.map((x) => x.name).join(', ')}` });
  return host;
}

export interface LabUpResult {
  state: LabState;
  created: boolean;
}

/** Brings the lab up; a lab that is already up is left as it is. */
export async function labUp(): Promise<LabUpResult> {
  if (process.getuid?.() !== 0) throw new FerryError('LAB', 'The lab needs root (mount namespaces, loop devices)', { hint: 'run as root' });
  if (await labIsUp()) return { state: (await labState())!, created: false };
  await labDown(); // a half-dead lab: clear it first
  const dir = labDir();
  await fs.mkdir(dir, { recursive: true });
  for (const d of PRIVATE_DIRS) await fs.mkdir(d, { recursive: true });
  await writeLabTcgEmulator();
  const hosts: LabHostState[] = [];
  for (const spec of LAB_HOSTS) hosts.push(await startHostNamespace(dir, spec));
  const state: LabState = { dir, hosts };
  const sshHost = hosts.find((h) => h.transport === 'ssh');
  if (sshHost) state.sshdPid = await startSshd(dir, sshHost);
  await fs.writeFile(stateFile(), JSON.stringify(state, null, 2));
  await writeInventory(state);
  return { state, created: true };
}

async function startHostNamespace(dir: string, spec: LabHostSpec): Promise<LabHostState> {
  const root = join(dir, 'hosts', spec.name);
  const source = (d: string): string => join(root, d.replace(/\//g, '_').replace(/^_/, ''));
  const hostUuid = await writeLabLibvirtConfig(source('/etc/libvirt'), spec.address);
  await writeLabLvmConfig(source('/etc/lvm'));
  const shared = join(dir, 'shared');
  await fs.mkdir(shared, { recursive: true });
  // The mount point is made inside the namespace: a directory inside another private one exists only there.
  const binds: string[] = [];
  for (const [src, d] of [...PRIVATE_DIRS.map((d) => [source(d), d]), [shared, LAB_SHARED_DIR]]) {
    await fs.mkdir(src!, { recursive: true });
    binds.push(`mkdir -p '${d}' && mount --bind '${src}' '${d}'`);
  }
  // sshd's shell reads root's startup files at every login: a lab host's are a fresh host's, not this machine's own.
  const plainShell = join(root, 'root-shell-startup');
  await fs.writeFile(plainShell, "# A lab host's root shell: nothing of the machine's own startup files.\n");
  for (const f of SHELL_STARTUP_FILES.map((f) => join(homedir(), f)).filter((f) => existsSync(f))) binds.push(`mount --bind '${plainShell}' '${f}'`);
  // Where a hypervisor host keeps its images and VM files, present from the start.
  for (const d of ['images', 'vms']) await fs.mkdir(join(root, 'var_lib_ferry', d), { recursive: true });
  // The host's identity, as /etc/machine-id is for a real machine.
  await fs.writeFile(join(root, 'var_lib_ferry', 'host-id'), `ferry-lab-${spec.name}-${Date.now().toString(36)}\n`);
  // Tells the host's agent to answer the lab's own checks too.
  await fs.writeFile(join(root, 'var_lib_ferry', 'lab-host'), `${spec.name}\n`);
  // bash as PID 1 reaps the orphans (QEMU daemonizes) that the namespace adopts.
  const script = `${binds.join(' && ')} && echo ready && exec bash -c 'trap "" TERM; while :; do sleep 3600 & wait $!; done'`;
  const child = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private', '--', 'bash', '-c', script], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(true);
    });
    child.on('exit', () => resolve(false));
    // unref: a pending timer would keep "ferry lab up" from exiting for its full ten seconds.
    setTimeout(() => resolve(false), 10_000).unref();
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  if (!ready) throw new FerryError('LAB', `Cannot create lab host "${spec.name}": ${err.trim() || 'unshare failed'}`, { hint: 'the lab needs root and mount/PID namespaces' });
  child.stdout.destroy();
  child.stderr.destroy();
  child.unref();
  // unshare forks the namespace's PID 1; that child is the one to enter.
  const children = (await fs.readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8')).trim().split(/\s+/);
  const pid = Number(children[0]);
  const libvirtd = await startLabLibvirtd({ ...spec, pid, root, enter: nsenterPrefix(pid) }, hostUuid);
  return { ...spec, pid, root, ...libvirtd };
}

async function startSshd(dir: string, host: LabHostState): Promise<number> {
  const sshDir = join(dir, 'ssh');
  await fs.mkdir(sshDir, { recursive: true, mode: 0o700 });
  const hostKey = join(sshDir, 'ssh_host_ed25519_key');
  const clientKey = join(sshDir, 'id_ed25519');
  if (!existsSync(hostKey)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  if (!existsSync(clientKey)) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKey, '-C', 'ferry-lab']);
  await fs.copyFile(`${clientKey}.pub`, join(sshDir, 'authorized_keys'));
  const pidFile = join(sshDir, 'sshd.pid');
  const config = [
    `ListenAddress ${host.address}:${LAB_SSH_PORT}`,
    `HostKey ${hostKey}`,
    `AuthorizedKeysFile ${join(sshDir, 'authorized_keys')}`,
    `PidFile ${pidFile}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PrintMotd no',
    'AcceptEnv no',
    'MaxStartups 100',
    'LogLevel ERROR',
  ].join('\n');
  await fs.writeFile(join(sshDir, 'sshd_config'), config + '\n');
  await fs.writeFile(
    join(sshDir, 'ssh_config'),
    [
      `Host ${host.name}`,
      `  HostName ${host.address}`,
      `  Port ${LAB_SSH_PORT}`,
      '  User root',
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      '  StrictHostKeyChecking no',
      `  UserKnownHostsFile ${join(sshDir, 'known_hosts')}`,
      '  LogLevel ERROR',
    ].join('\n') + '\n',
  );
  await fs.mkdir('/run/sshd', { recursive: true });
  await fs.rm(pidFile, { force: true });
  const sshd = (await run('sh', ['-c', 'command -v sshd || echo /usr/sbin/sshd'])).stdout.trim();
  await run(nsenterPrefix(host.pid)[0]!, [...nsenterPrefix(host.pid).slice(1), sshd, '-f', join(sshDir, 'sshd_config')]);
  for (let i = 0; i < 100; i++) {
    // sshd runs inside the namespace and writes the PID it has there.
    if (existsSync(pidFile)) return hostPidOf(host.pid, Number((await fs.readFile(pidFile, 'utf8')).trim()));
    await sleep(50);
  }
  throw new FerryError('LAB', `sshd for lab host "${host.name}" did not start`, { hint: `is port ${LAB_SSH_PORT} on ${host.address} free?` });
}

/** How one lab host's libvirtd reaches the other's: TCP without authentication, on loopback, in the lab only. */
function labLibvirtUri(address: string): string {
  return `qemu+tcp://${address}/system`;
}

async function writeInventory(state: LabState): Promise<void> {
  const hosts: Record<string, Record<string, unknown>> = {};
  for (const h of state.hosts) {
    if (h.transport === 'local') {
      hosts[h.name] = { transport: 'local', address: h.address, wrap: nsenterPrefix(h.pid), libvirt_uri: labLibvirtUri(h.address) };
    } else {
      hosts[h.name] = {
        transport: 'ssh',
        ssh: h.name,
        ssh_options: ['-F', join(state.dir, 'ssh', 'ssh_config')],
        address: h.address,
        agent: localAgentCommand(),
        libvirt_uri: labLibvirtUri(h.address),
      };
    }
  }
  await fs.writeFile(join(state.dir, 'hosts.yaml'), '# Written by "ferry lab up"; removed by "ferry lab down".\n' + stringify({ hosts }));
}

/** Stops every lab VM and host and removes the lab's files. */
export async function labDown(): Promise<{ stopped: string[] }> {
  const state = await labState();
  const stopped: string[] = [];
  if (state) {
    if (state.sshdPid && alive(state.sshdPid)) process.kill(state.sshdPid, 'SIGKILL');
    for (const host of state.hosts) {
      // Killing a PID namespace's init kills everything in it: its QEMUs too.
      if (alive(host.pid)) {
        process.kill(host.pid, 'SIGKILL');
        stopped.push(host.name);
      }
    }
    // Its libvirtd goes with it, and with the last process the namespace's mounts.
    for (const host of state.hosts) {
      for (let i = 0; i < 100 && (alive(host.pid) || alive(host.libvirtdPid)); i++) await sleep(50);
    }
    await releaseLabVolumeGroups(state.hosts.map((h) => h.root));
  }
  // Loop devices the lab created point into the lab's files; free them first.
  const dir = labDir();
  if (existsSync(dir)) {
    const loops = await run('losetup', ['-J', '-l'], { allowFailure: true });
    try {
      const devs = (JSON.parse(loops.stdout || '{"loopdevices":[]}') as { loopdevices: Array<{ name: string; 'back-file': string }> }).loopdevices;
      for (const loop of devs) if (loop['back-file']?.startsWith(dir)) await run('losetup', ['-d', loop.name], { allowFailure: true });
    } catch {
      // no loop devices
    }
    await fs.rm(dir, { recursive: true, force: true });
  }
  return { stopped };
}

/**
 * Restarts a lab host's libvirtd changed as `change` says (another host's
 * UUID, CPU models it does not know), or as it was when `change` is
 * undefined; its domains run on.
 */
export async function changeLabLibvirtd(hostName: string, change?: Partial<LabLibvirtdChange>): Promise<void> {
  const state = (await labState())!;
  const host = await labHost(hostName);
  const libvirtdPid = await restartLabLibvirtd({ ...host, enter: nsenterPrefix(host.pid) }, host.libvirtdPid, {
    hostUuid: change?.hostUuid ?? host.hostUuid,
    withoutCpuModels: change?.withoutCpuModels,
  });
  state.hosts = state.hosts.map((h) => (h.name === hostName ? { ...h, libvirtdPid } : h));
  await fs.writeFile(stateFile(), JSON.stringify(state, null, 2));
}

/**
 * Gives lab host `hostName` a QEMU that lacks the CPU models and flags
 * `change` names, as another machine's may; its own again when `change` is
 * undefined. QEMUs already running there are not touched.
 */
export async function changeLabQemu(hostName: string, change?: LabQemuChange): Promise<void> {
  const host = await labHost(hostName);
  await changeLabHostQemu({ root: host.root, enter: nsenterPrefix(host.pid) }, change);
}

/**
 * With `isolated`, lab host `hostName` sees no network device but lo where
 * ferry's agent looks for bridges (see lab/net-view.ts), as a machine
 * without the bridges of this one; without, the machine's own again.
 */
export async function changeLabNetView(hostName: string, change: { isolated: boolean }): Promise<void> {
  const host = await labHost(hostName);
  await changeLabHostNetView({ root: host.root, enter: nsenterPrefix(host.pid) }, change);
}

/** Gives lab host `hostName` LVM volume group `vg` of `sizeMiB` on a loop device (see lab/lvm.ts); kept if it has one. */
export async function labHostVolumeGroup(hostName: string, vg: string, sizeMiB: number): Promise<{ vg: string; device: string }> {
  const host = await labHost(hostName);
  return labVolumeGroup({ ...host, enter: nsenterPrefix(host.pid) }, vg, sizeMiB);
}

/** Removes volume group `vg` (and its LVs and loop devices) from lab host `hostName`. */
export async function labHostRemoveVolumeGroup(hostName: string, vg: string): Promise<void> {
  const host = await labHost(hostName);
  await removeLabVolumeGroup({ ...host, enter: nsenterPrefix(host.pid) }, vg);
}

/** Runs a command inside a lab host. */
export async function labExecArgv(hostName: string, argv: string[]): Promise<string[]> {
  const host = await labHost(hostName);
  return [...nsenterPrefix(host.pid), ...argv];
}

/** Runs virsh against a lab host's own libvirtd (qemu:///system inside the host) and returns its output. */
export async function labVirsh(hostName: string, args: readonly string[]): Promise<string> {
  const [file, ...argv] = await labExecArgv(hostName, ['virsh', '-c', 'qemu:///system', ...args]);
  const r = await run(file!, argv, { allowFailure: true });
  if (r.exitCode !== 0) {
    const why =
      r.stderr
        .replace(/^error: /gm, '')
        .trim()
        .split('\n')
        .join('; ') || `exit code ${r.exitCode}`;
    throw new FerryError('COMMAND_FAILED', `virsh ${args.join(' ')} on "${hostName}" failed: ${why}`, {
      hint: `see the domain's log: ferry lab exec ${hostName} -- ls /var/log/libvirt/qemu`,
      details: { ...r },
    });
  }
  return r.stdout;
}
