/**
 * Lab VMs: a plain QEMU process with a QMP socket on a lab host, started the
 * way an operator would by hand, so ferry finds and migrates it like any VM.
 */
import { join } from 'node:path';
import { detectAccel } from '../drivers/qemu/accel.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { sleep } from '../util/abort.js';
import { readSize } from '../util/units.js';
import { ensureTestGuest } from './guest-image.js';
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
}

export interface LabVm {
  name: string;
  pid: number;
  qmpSocket: string;
  serialLog: string;
  disks: Array<{ path: string; format: string }>;
  argv: string[];
}

export function labVmPaths(name: string): { qmpSocket: string; serialLog: string; pidfile: string } {
  return { qmpSocket: join(LAB_RUN_DIR, `${name}.qmp`), serialLog: join(LAB_VM_DIR, `${name}.serial.log`), pidfile: join(LAB_RUN_DIR, `${name}.pid`) };
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
  memoryMiB?: number;
  /** In the guest's order (vda, vdb, ...). */
  disks: ReadonlyArray<{ path: string; format: string }>;
  cache?: 'none' | 'writeback' | 'unsafe';
  /** File that receives the serial console (FERRY-GUEST-READY, FERRY-REC N), appended to. */
  serialLog: string;
  qmpSocket: string;
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
    ...(vm.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m',
    String(vm.memoryMiB ?? 256),
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
  ];
  for (const [i, d] of vm.disks.entries()) {
    argv.push('-drive', `file=${d.path},format=${d.format},if=none,id=drive${i},cache=${vm.cache ?? 'none'},aio=threads`);
    argv.push('-device', `virtio-blk-pci,drive=drive${i},id=disk${i}`);
  }
  return argv;
}

export async function startLabVm(agent: AgentClient, spec: LabVmSpec): Promise<LabVm> {
  if (!/^[\w.-]+$/.test(spec.name)) throw new FerryError('USAGE', `Invalid VM name "${spec.name}"`, { hint: 'use letters, digits, ".", "-" and "_"' });
  const running = await agent.call('qemu.list', undefined);
  if (running.some((p) => p.name === spec.name)) throw new FerryError('TARGET_EXISTS', `VM "${spec.name}" already runs on "${agent.host.name}"`, { hint: 'pick another name' });
  const guest = spec.kernel ? undefined : await ensureTestGuest();
  const kernel = spec.kernel ?? guest!.kernel;
  const initrd = spec.initrd ?? (spec.kernel ? undefined : guest!.initrd);
  const append = [spec.append ?? guest?.append ?? 'console=ttyS0', spec.extraAppend].filter(Boolean).join(' ');
  const paths = labVmPaths(spec.name);
  await agent.call('file.mkdir', { path: LAB_VM_DIR });
  await agent.call('file.mkdir', { path: LAB_RUN_DIR });
  const created: string[] = [];
  try {
    const disks = await _labVmDisks(agent, spec, created);
    const accel = await detectAccel(kernel);
    const argv = labVmArgv({ name: spec.name, kernel, initrd, append, accel, memoryMiB: spec.memoryMiB, disks, cache: spec.cache, serialLog: paths.serialLog, qmpSocket: paths.qmpSocket });
    const { pid } = await agent.call('qemu.start', { argv, pidfile: paths.pidfile });
    return { name: spec.name, pid, qmpSocket: paths.qmpSocket, serialLog: paths.serialLog, disks, argv };
  } catch (e) {
    for (const f of created) await agent.call('file.remove', { path: f }).catch(() => undefined);
    throw e;
  }
}

/** The disks of `spec` with their formats: a size becomes a new qcow2 image (its path pushed to `created`), a path is inspected. */
async function _labVmDisks(agent: AgentClient, spec: LabVmSpec, created: string[]): Promise<Array<{ path: string; format: string }>> {
  const disks: Array<{ path: string; format: string }> = [];
  for (const [i, disk] of (spec.disks.length ? spec.disks : ['64M']).entries()) {
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
