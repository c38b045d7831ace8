/**
 * Lab VMs: a plain QEMU process with a QMP socket on a lab host, started the
 * way an operator would by hand, so ferry finds and migrates it like any VM;
 * or the same guest as a domain of the lab host's libvirtd.
 */
import { join } from 'node:path';
import { detectAccel } from '../drivers/qemu/accel.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { sleep } from '../util/abort.js';
import { readSize } from '../util/units.js';
import { labDomainXml } from './domain-xml.js';
import { labTcgEmulatorPath } from './tcg-emulator.js';
import { ensureTestGuest } from './guest-image.js';
import { labVirsh } from './lab.js';
import { GUEST_READY } from './records.js';

export const LAB_VM_DIR = '/var/lib/ferry/vms';
export const LAB_IMAGE_DIR = '/var/lib/ferry/images';
export const LAB_RUN_DIR = '/run/ferry';

export interface LabVmSpec {
  name: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** Each an existing image path, or a size ("64M") for a new qcow2 image. */
  disks: string[];
  memoryMiB?: number;
  /** Extra kernel parameters for the test guest (ferry.rate=, ferry.dirty=). */
  extraAppend?: string;
  /** QEMU's cache mode for every disk (default none: no host page cache, as on a production host). */
  cache?: 'none' | 'writeback' | 'unsafe';
  /** QEMU's -cpu for a VM started by hand (default: the host's under KVM, QEMU's own qemu64 under TCG). */
  cpu?: string;
  /** A libvirt domain only: boot through OVMF, with a UEFI variable store of its own (made by libvirt from OVMF's template). */
  uefi?: boolean;
  /** A libvirt domain only: an emulated TPM 2.0 (swtpm). */
  tpm?: boolean;
}

export interface LabVm {
  name: string;
  pid: number;
  qmpSocket: string;
  serialLog: string;
  disks: LabDisk[];
  argv: string[];
}

/** Debian's OVMF (package ovmf), without Secure Boot: the lab's PC machine has no SMM. */
const OVMF = { loader: '/usr/share/OVMF/OVMF_CODE_4M.fd', template: '/usr/share/OVMF/OVMF_VARS_4M.fd' };

/** Where libvirt keeps a domain's UEFI variable store by default, in each lab host's own /var/lib/libvirt. */
export function labNvramPath(name: string): string {
  return `/var/lib/libvirt/qemu/nvram/${name}_VARS.fd`;
}

export function labVmPaths(name: string): { qmpSocket: string; serialLog: string; qemuLog: string; pidfile: string } {
  return {
    qmpSocket: join(LAB_RUN_DIR, `${name}.qmp`),
    serialLog: join(LAB_VM_DIR, `${name}.serial.log`),
    qemuLog: join(LAB_VM_DIR, `${name}.qemu.log`),
    pidfile: join(LAB_RUN_DIR, `${name}.pid`),
  };
}

/** Where startLabVm creates disk `index` of VM `name` when given a size. */
export function labDiskPath(name: string, index = 0): string {
  return join(LAB_IMAGE_DIR, `${name}-disk${index}.qcow2`);
}

export interface LabVmArgvOptions {
  name: string;
  kernel: string;
  initrd?: string;
  /** The whole kernel command line. */
  append: string;
  /** QEMU's accelerator: "kvm" (with the host's CPU) or "tcg". */
  accel: string;
  /** -cpu, when not the accelerator's default. */
  cpu?: string;
  memoryMiB?: number;
  /** In the guest's order (vda, vdb, ...). */
  disks: ReadonlyArray<{ path: string; format: string }>;
  cache?: 'none' | 'writeback' | 'unsafe';
  /** File that receives the serial console (FERRY-GUEST-READY, FERRY-REC N), appended to. */
  serialLog: string;
  /** QEMU's own log, which also receives what the daemonized QEMU writes on stderr (an assertion that ends it). */
  qemuLog?: string;
  qmpSocket: string;
}

/**
 * QEMU's -m for a lab VM. Under TCG, 8 KiB less than asked: QEMU before 9.0
 * loses guest stores during a live migration under TCG (fixed upstream by
 * 03bfc2188f, "physmem: Fix migration dirty bitmap coherency with TCG memory
 * access"). Its dirty-bitmap sync clears the migration bits 64 pages at a
 * time without resetting the vCPU's TLB entries, so later stores through
 * them mark nothing dirty and those pages reach the target stale: the guest
 * oopses, reboots or hangs silently after a migration that takes several
 * passes (a bandwidth cap). That fast path is taken only for a RAM block
 * whose length is a multiple of 64 pages (256 KiB); 8 KiB (QEMU's RAM
 * granule) short of it the sync goes page by page and resets the TLB.
 */
export function labVmMemory(memoryMiB: number, accel: string): string {
  return accel === 'tcg' ? `${memoryMiB * 1024 - 8}k` : String(memoryMiB);
}

/**
 * The QEMU command line of a lab VM: a PC with one virtio-blk device per
 * disk (ids drive0/disk0, ...), its console in a file and a QMP socket, as an
 * operator would start it by hand.
 */
export function labVmArgv(vm: LabVmArgvOptions): string[] {
  const argv = [
    'qemu-system-x86_64',
    '-name',
    `guest=${vm.name}`,
    '-machine',
    'pc',
    '-accel',
    vm.accel,
    ...(vm.cpu ? ['-cpu', vm.cpu] : vm.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m',
    labVmMemory(vm.memoryMiB ?? 256, vm.accel),
    '-smp',
    '1',
    '-nodefaults',
    '-display',
    'none',
    '-no-user-config',
    '-kernel',
    vm.kernel,
    ...(vm.initrd ? ['-initrd', vm.initrd] : []),
    '-append',
    vm.append,
    '-chardev',
    `file,id=serial0,path=${vm.serialLog},append=on`,
    '-serial',
    'chardev:serial0',
    '-qmp',
    `unix:${vm.qmpSocket},server=on,wait=off`,
    // With logging on (-d), a daemonized QEMU keeps its stderr in the log instead of /dev/null.
    ...(vm.qemuLog ? ['-D', vm.qemuLog, '-d', 'guest_errors'] : []),
  ];
  for (const [i, d] of vm.disks.entries()) {
    argv.push('-drive', `file=${d.path},format=${d.format},if=none,id=drive${i},cache=${vm.cache ?? 'none'},aio=threads`);
    argv.push('-device', `virtio-blk-pci,drive=drive${i},id=disk${i}`);
  }
  return argv;
}

export async function startLabVm(agent: AgentClient, spec: LabVmSpec): Promise<LabVm> {
  await _checkNameFree(agent, spec.name, { domains: false });
  const boot = await _labVmBoot(spec);
  const paths = labVmPaths(spec.name);
  await agent.call('file.mkdir', { path: LAB_VM_DIR });
  await agent.call('file.mkdir', { path: LAB_RUN_DIR });
  const created: string[] = [];
  try {
    const disks = await _labVmDisks(agent, spec, created);
    const accel = await detectAccel(boot.kernel);
    const argv = labVmArgv({
      name: spec.name,
      ...boot,
      accel,
      cpu: spec.cpu,
      memoryMiB: spec.memoryMiB,
      disks,
      cache: spec.cache,
      serialLog: paths.serialLog,
      qemuLog: paths.qemuLog,
      qmpSocket: paths.qmpSocket,
    });
    const { pid } = await agent.call('qemu.start', { argv, pidfile: paths.pidfile });
    return { name: spec.name, pid, qmpSocket: paths.qmpSocket, serialLog: paths.serialLog, disks, argv };
  } catch (e) {
    for (const f of created) await agent.call('file.remove', { path: f }).catch(() => undefined);
    throw e;
  }
}

export interface LabDomain {
  name: string;
  /** PID of the domain's QEMU, as the lab host sees it. */
  pid: number;
  serialLog: string;
  disks: LabDisk[];
  /** Where the domain's XML is kept on the lab host (what was defined). */
  xmlPath: string;
}

/**
 * Starts the lab VM of `spec` as a domain of the lab host's libvirtd
 * (`virsh define`, `virsh start`): the same guest, disks and console file as
 * startLabVm, but owned by libvirt, so libvirt can migrate it.
 */
export async function startLabDomain(agent: AgentClient, spec: LabVmSpec): Promise<LabDomain> {
  const host = agent.host.name;
  await _checkNameFree(agent, spec.name, { domains: true });
  const boot = await _labVmBoot(spec);
  const { serialLog } = labVmPaths(spec.name);
  const xmlPath = join(LAB_VM_DIR, `${spec.name}.xml`);
  await agent.call('file.mkdir', { path: LAB_VM_DIR });
  const created: string[] = [];
  let defined = false;
  try {
    const disks = await _labVmDisks(agent, spec, created);
    const accel = await detectAccel(boot.kernel);
    await agent.call('file.write', {
      path: xmlPath,
      text: labDomainXml({
        name: spec.name,
        ...boot,
        accel,
        memoryMiB: spec.memoryMiB,
        disks,
        cache: spec.cache,
        serialLog,
        emulator: accel === 'tcg' ? labTcgEmulatorPath() : undefined,
        uefi: spec.uefi ? { ...OVMF, nvram: labNvramPath(spec.name) } : undefined,
        tpm: spec.tpm,
      }),
    });
    await labVirsh(host, ['define', '--validate', xmlPath]);
    defined = true;
    await labVirsh(host, ['start', spec.name]);
    const pid = Number((await agent.call('file.read', { path: `/run/libvirt/qemu/${spec.name}.pid` })).text.trim());
    return { name: spec.name, pid, serialLog, disks, xmlPath };
  } catch (e) {
    if (defined) await labVirsh(host, ['undefine', spec.name]).catch(() => undefined);
    for (const f of created) await agent.call('file.remove', { path: f }).catch(() => undefined);
    if (e instanceof FerryError && e.code === 'COMMAND_FAILED')
      throw new FerryError('COMMAND_FAILED', `Cannot start VM "${spec.name}" as a libvirt domain on "${host}": ${e.message}`, {
        hint: `its log: ferry lab exec ${host} -- cat /var/log/libvirt/qemu/${spec.name}.log; its XML: ${xmlPath} on ${host}`,
        cause: e,
        details: e.details,
      });
    throw e;
  }
}

/** Stops lab VM `name` on the agent's host, a libvirt domain (destroyed and undefined) or a plain QEMU process; its disks are kept. */
export async function stopLabVm(agent: AgentClient, name: string): Promise<{ kind: 'libvirt' | 'qemu' }> {
  const host = agent.host.name;
  if ((await labDomainNames(host)).includes(name)) {
    if ((await labVirsh(host, ['domstate', name])).trim() !== 'shut off') await labVirsh(host, ['destroy', name]);
    // A lab domain's UEFI variable store goes with it (libvirt refuses to undefine a domain that has one unless told which).
    await labVirsh(host, ['undefine', '--nvram', name]);
    return { kind: 'libvirt' };
  }
  const vm = (await agent.call('qemu.list', undefined)).find((p) => p.name === name);
  if (!vm) throw new FerryError('UNKNOWN_VM', `No VM "${name}" on "${host}"`, { hint: `list them: ferry vm list ${host}; ferry lab exec ${host} -- virsh list --all` });
  const { exited } = await agent.call('qemu.kill', { pid: vm.pid, signal: 'SIGTERM' });
  if (!exited) await agent.call('qemu.kill', { pid: vm.pid, signal: 'SIGKILL' });
  return { kind: 'qemu' };
}

/** Names of the domains a lab host's libvirtd knows, running or not. */
export async function labDomainNames(host: string): Promise<string[]> {
  return (await labVirsh(host, ['list', '--all', '--name'])).split('\n').filter((x) => x.trim() !== '');
}

/** Refuses a name that is invalid or taken by a QEMU process (or, with `domains`, a libvirt domain) on the agent's host. */
async function _checkNameFree(agent: AgentClient, name: string, opts: { domains: boolean }): Promise<void> {
  if (!/^[\w.-]+$/.test(name)) throw new FerryError('USAGE', `Invalid VM name "${name}"`, { hint: 'use letters, digits, ".", "-" and "_"' });
  const running = await agent.call('qemu.list', undefined);
  if (running.some((p) => p.name === name)) throw new FerryError('TARGET_EXISTS', `VM "${name}" already runs on "${agent.host.name}"`, { hint: 'pick another name' });
  if (opts.domains && (await labDomainNames(agent.host.name)).includes(name))
    throw new FerryError('TARGET_EXISTS', `A libvirt domain "${name}" exists on "${agent.host.name}"`, {
      hint: `pick another name, or remove it: ferry lab vm stop ${name} --host ${agent.host.name}`,
    });
}

/** Kernel, initrd and command line of `spec`: the test guest's unless a kernel is given. */
async function _labVmBoot(spec: LabVmSpec): Promise<{ kernel: string; initrd?: string; append: string }> {
  const guest = spec.kernel ? undefined : await ensureTestGuest();
  const kernel = spec.kernel ?? guest!.kernel;
  const initrd = spec.initrd ?? (spec.kernel ? undefined : guest!.initrd);
  const append = [spec.append ?? guest?.append ?? 'console=ttyS0', spec.extraAppend].filter(Boolean).join(' ');
  return { kernel, initrd, append };
}

/**
 * A lab VM's disk: its image, and for a pool volume the pool and volume by
 * which a libvirt domain names it; for an NBD export (`path` its URL) the
 * server, which stands in for storage both hosts reach over the network;
 * for an iSCSI LUN (`path` its URL) the target, and the CHAP user if any.
 */
export interface LabDisk {
  path: string;
  format: string;
  volume?: { pool: string; name: string };
  nbd?: { host: string; port: number; name: string };
  iscsi?: { host: string; port: number; target: string; lun: number; user?: string };
}

/** The disks of `spec` with their formats: a size becomes a new qcow2 image (its path pushed to `created`), a path is inspected. */
async function _labVmDisks(agent: AgentClient, spec: LabVmSpec, created: string[]): Promise<LabDisk[]> {
  const disks: LabDisk[] = [];
  for (const [i, disk] of (spec.disks.length ? spec.disks : ['64M']).entries()) {
    const nbd = /^nbd:\/\/([^:/]+):(\d+)\/(.+)$/.exec(disk);
    if (nbd) {
      disks.push({ path: disk, format: 'raw', nbd: { host: nbd[1]!, port: Number(nbd[2]), name: nbd[3]! } });
      continue;
    }
    const iscsi = /^iscsi:\/\/(?:([^@/]+)@)?([^:/]+):(\d+)\/([^/]+)\/(\d+)$/.exec(disk);
    if (iscsi) {
      const [, user, host, port, target, lun] = iscsi;
      disks.push({ path: disk, format: 'raw', iscsi: { host: host!, port: Number(port), target: target!, lun: Number(lun), user } });
      continue;
    }
    const volume = /^volume:([^/]+)\/(.+)$/.exec(disk);
    if (volume) {
      // A volume of a libvirt storage pool there: a libvirt domain names it so, a QEMU process opens its path.
      const pool = volume[1]!;
      const name = volume[2]!;
      const path = (await labVirsh(agent.host.name, ['vol-path', '--pool', pool, name])).trim();
      disks.push({ path, format: (await agent.call('image.chain', { path }))[0]!.format, volume: { pool, name } });
      continue;
    }
    const sizeBytes = readSize(disk);
    if (sizeBytes !== undefined) {
      const path = labDiskPath(spec.name, i);
      const st = await agent.call('file.stat', { path });
      if (st.exists)
        throw new FerryError('TARGET_EXISTS', `Image "${path}" already exists on "${agent.host.name}"`, {
          hint: `remove it (ferry lab exec ${agent.host.name} -- rm ${path}) or pass its path as --disk`,
        });
      created.push(path);
      await agent.call('image.create', { path, format: 'qcow2', sizeBytes });
      disks.push({ path, format: 'qcow2' });
    } else {
      const chain = await agent.call('image.chain', { path: disk });
      disks.push({ path: disk, format: chain[0]!.format });
    }
  }
  return disks;
}

/** Waits until the test guest reports it is up (its READY line on the serial console). */
export async function waitForGuestReady(agent: AgentClient, name: string, timeoutMs = 120_000): Promise<void> {
  const { serialLog } = labVmPaths(name);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await agent.call('file.stat', { path: serialLog });
    if (st.exists) {
      const { text } = await agent.call('file.read', { path: serialLog });
      if (text.includes(GUEST_READY)) return;
    }
    await sleep(250);
  }
  throw new FerryError('LAB', `VM "${name}" on "${agent.host.name}" did not report ready within ${timeoutMs / 1000} s`, {
    hint: `read its console: ferry lab exec ${agent.host.name} -- cat ${serialLog}`,
  });
}

export async function readSerial(agent: AgentClient, name: string): Promise<string> {
  const { serialLog } = labVmPaths(name);
  const st = await agent.call('file.stat', { path: serialLog });
  return st.exists ? (await agent.call('file.read', { path: serialLog })).text : '';
}
