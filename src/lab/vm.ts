/**
 * Lab VMs: a plain QEMU process with a QMP socket on a lab host, started the
 * way an operator would by hand, so ferry finds and migrates it like any VM.
 */
import { join } from 'node:path';
import { detectAccel } from '../drivers/qemu/accel.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { FerryError } from '../util/errors.js';
import { sleep } from '../util/abort.js';
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
  /** qcow2 images backed by this base (created if SIZE disks are asked for). */
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

const SIZE = /^(\d+)([KMGT]?)$/i;

export function labVmPaths(name: string): { qmpSocket: string; serialLog: string; pidfile: string } {
  return { qmpSocket: join(LAB_RUN_DIR, `${name}.qmp`), serialLog: join(LAB_VM_DIR, `${name}.serial.log`), pidfile: join(LAB_RUN_DIR, `${name}.pid`) };
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
  const disks: Array<{ path: string; format: string }> = [];
  const created: string[] = [];
  try {
    return await startWithDisks();
  } catch (e) {
    for (const f of created) await agent.call('file.remove', { path: f }).catch(() => undefined);
    throw e;
  }

  async function startWithDisks(): Promise<LabVm> {
  const specs = spec.disks.length ? spec.disks : ['64M'];
  for (const [i, d] of specs.entries()) {
    const m = SIZE.exec(d);
    if (m) {
      const path = join(LAB_IMAGE_DIR, `${spec.name}-disk${i}.qcow2`);
      const st = await agent.call('file.stat', { path });
      if (st.exists) throw new FerryError('TARGET_EXISTS', `Image "${path}" already exists on "${agent.host.name}"`, { hint: `remove it (ferry lab exec ${agent.host.name} -- rm ${path}) or pass its path as --disk` });
      const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
      created.push(path);
      await agent.call('image.create', { path, format: 'qcow2', sizeBytes: Number(m[1]) * mult });
      disks.push({ path, format: 'qcow2' });
    } else {
      const chain = await agent.call('image.chain', { path: d });
      disks.push({ path: d, format: chain[0]!.format });
    }
  }
  const accel = await detectAccel(kernel);
  const argv = [
    'qemu-system-x86_64',
    '-name', `guest=${spec.name}`,
    '-machine', 'pc',
    '-accel', accel,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(spec.memoryMiB ?? 256),
    '-smp', '1',
    '-nodefaults', '-display', 'none', '-no-user-config',
    '-kernel', kernel,
    ...(initrd ? ['-initrd', initrd] : []),
    '-append', append,
    '-chardev', `file,id=serial0,path=${paths.serialLog},append=on`,
    '-serial', 'chardev:serial0',
    '-qmp', `unix:${paths.qmpSocket},server=on,wait=off`,
  ];
  for (const [i, d] of disks.entries()) {
    argv.push('-drive', `file=${d.path},format=${d.format},if=none,id=drive${i},cache=${spec.cache ?? 'none'},aio=threads`);
    argv.push('-device', `virtio-blk-pci,drive=drive${i},id=disk${i}`);
  }
  const { pid } = await agent.call('qemu.start', { argv, pidfile: paths.pidfile });
  return { name: spec.name, pid, qmpSocket: paths.qmpSocket, serialLog: paths.serialLog, disks, argv };
  }
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
  throw new FerryError('LAB', `VM "${name}" on "${agent.host.name}" did not report ready within ${timeoutMs / 1000} s`, { hint: `read its console: ferry lab exec ${agent.host.name} -- cat ${serialLog}` });
}

export async function readSerial(agent: AgentClient, name: string): Promise<string> {
  const { serialLog } = labVmPaths(name);
  const st = await agent.call('file.stat', { path: serialLog });
  return st.exists ? (await agent.call('file.read', { path: serialLog })).text : '';
}
