/** Finding QEMU VMs on a host and describing them through QMP. */
import type { AgentClient } from '../../hosts/agent-client.js';
import type { ImageInfo } from '../../storage/image-info.js';
import { FerryError, messageOf } from '../../util/errors.js';
import type { VmDisk, VmInfo } from '../driver.js';
import { parseKeyval, parseQemuArgv } from './argv.js';
import { guestCpu } from './cpu.js';
import { RemoteQmp } from './remote-qmp.js';

interface QueryBlockImage {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'backing-image'?: QueryBlockImage;
}

interface QueryBlockEntry {
  device: string;
  qdev?: string;
  inserted?: {
    file: string;
    'node-name': string;
    drv: string;
    ro: boolean;
    cache: { writeback: boolean; direct: boolean; 'no-flush': boolean };
    image: QueryBlockImage;
  };
}

export async function describeVm(agent: AgentClient, proc: { pid: number; name: string; argv: string[]; qmpSocket?: string }): Promise<VmInfo> {
  const qmp = await RemoteQmp.open(agent, proc.qmpSocket!);
  try {
    return await describeWithQmp(qmp, proc);
  } finally {
    await qmp.close();
  }
}

export async function describeWithQmp(qmp: RemoteQmp, proc: { pid: number; name: string; argv: string[] }): Promise<VmInfo & { nodes: Map<string, string> }> {
  const status = await qmp.execute<{ status: string }>('query-status');
  const blocks = await qmp.execute<QueryBlockEntry[]>('query-block');
  const mem = await qmp.execute<{ 'base-memory': number }>('query-memory-size-summary');
  const version = qmp.greeting.version.qemu;
  const nodes = new Map<string, string>();
  const disks: VmDisk[] = [];
  for (const block of blocks) {
    if (!block.inserted) continue; // an empty CD-ROM drive: nothing to move
    const device = block.device || block.qdev || block.inserted['node-name'];
    nodes.set(device, block.inserted['node-name']);
    const chain: ImageInfo[] = [];
    for (let img = block.inserted.image['backing-image']; img; img = img['backing-image']) {
      chain.push({ filename: img.filename, format: img.format, virtualSize: img['virtual-size'], actualSize: img['actual-size'] });
    }
    disks.push({
      device,
      path: block.inserted.image.filename,
      format: block.inserted.image.format,
      virtualSize: block.inserted.image['virtual-size'],
      allocatedSize: block.inserted.image['actual-size'],
      backingChain: chain,
      cache: { writeback: block.inserted.cache.writeback, direct: block.inserted.cache.direct, noFlush: block.inserted.cache['no-flush'] },
      readOnly: block.inserted.ro,
    });
  }
  const parsed = parseQemuArgv(proc.argv);
  const auxFiles = parsed.options.filter((o) => ['-kernel', '-initrd', '-bios'].includes(o.flag) && o.value).map((o) => o.value!);
  const bridges = parsed.options.filter((o) => (o.flag === '-netdev' || o.flag === '-nic') && o.value?.startsWith('bridge')).map((o) => `bridge:${parseKeyval(o.value!, 'type').get('br') ?? 'br0'}`);
  return {
    name: proc.name,
    driver: 'qemu',
    cpuModel: guestCpu(parsed).model,
    attachments: bridges,
    pid: proc.pid,
    state: status.status,
    memoryBytes: mem['base-memory'],
    disks,
    hypervisorVersion: `${version.major}.${version.minor}.${version.micro}`,
    auxFiles,
    nodes,
  };
}

export async function listVms(agent: AgentClient): Promise<VmInfo[]> {
  const procs = await agent.call('qemu.list', undefined);
  const out: VmInfo[] = [];
  for (const proc of procs) {
    try {
      out.push(await describeVm(agent, proc));
    } catch (e) {
      // A VM whose monitor is busy (another client holds it) is still listed.
      out.push({ name: proc.name, driver: 'qemu', pid: proc.pid, state: `unknown (${messageOf(e)})`, memoryBytes: 0, disks: [], hypervisorVersion: '', auxFiles: [] });
    }
  }
  return out;
}

export async function findQemuProcess(agent: AgentClient, name: string): Promise<{ pid: number; name: string; argv: string[]; qmpSocket?: string }> {
  const procs = await agent.call('qemu.list', undefined);
  const proc = procs.find((x) => x.name === name);
  if (!proc) {
    throw new FerryError('UNKNOWN_VM', `Unknown VM "${name}" on host "${agent.host.name}"`, {
      hint: procs.length ? `VMs there: ${procs.map((x) => x.name).join(', ')}` : `no QEMU VM with a QMP monitor runs there; see "ferry vm list ${agent.host.name}"`,
    });
  }
  return proc;
}
