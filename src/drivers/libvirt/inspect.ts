/** A libvirt domain described in the driver-neutral shape the migration works with. */
import type { ImageInfo } from '../../storage/image-info.js';
import type { VmDisk, VmInfo, VmOwnFile } from '../driver.js';
import type { DomainDescription, DomainDisk } from './domain-xml.js';

export interface DomainVmInfo extends VmInfo {
  uuid?: string;
  /** Disks ferry cannot move as local storage, and why (a network disk, a volume of an inactive pool, an image qemu-img could not read). */
  unmovableDisks: { target: string; reason: string }[];
  /** Firmware the target must have at the same path (read-only loaders, NVRAM templates): the host's, not the VM's, so not copied. */
  hostFiles: string[];
  /** Files the VM's serial ports and consoles write to: their directories must exist on the target. */
  chardevFiles: string[];
  /** The libvirt networks and Linux bridges its interfaces attach to: the target needs them too. */
  networks: string[];
  bridges: string[];
}

/**
 * What the migration needs to know of a domain. `images` holds, for each
 * disk path, the image and its backing chain top first (`image.chain` on
 * the domain's host); a disk without an entry is unmovable.
 */
export function describeDomain(
  domain: { name: string; state: string; description: DomainDescription },
  images: ReadonlyMap<string, ImageInfo[]>,
  host: { hypervisorVersion?: string; pid?: number } = {},
): DomainVmInfo {
  const d = domain.description;
  const disks: VmDisk[] = [];
  const unmovableDisks: DomainVmInfo['unmovableDisks'] = [];
  for (const disk of d.disks) {
    if (disk.type === 'network' && disk.network) {
      disks.push({
        device: disk.target,
        path: networkDiskUrl(disk.network),
        format: disk.format ?? 'raw',
        virtualSize: 0,
        backingChain: [],
        cache: _cacheFlags(disk.cache),
        readOnly: disk.readOnly,
        kind: 'network',
      });
      continue;
    }
    const unmovable = _whyUnmovable(disk, images);
    if (unmovable === 'empty') continue; // a drive without a medium: nothing to move
    if (unmovable) {
      unmovableDisks.push({ target: disk.target, reason: unmovable });
      continue;
    }
    const [top, ...chain] = images.get(disk.path!)!;
    disks.push({
      device: disk.target,
      path: disk.path!,
      format: disk.format ?? top!.format,
      virtualSize: top!.virtualSize,
      allocatedSize: top!.actualSize,
      backingChain: chain,
      cache: _cacheFlags(disk.cache),
      readOnly: disk.readOnly,
      kind: disk.type === 'block' || disk.type === 'volume' ? disk.type : 'file',
      ...(disk.type === 'volume' && disk.pool && disk.volume ? { volume: { pool: disk.pool, name: disk.volume } } : {}),
    });
  }
  const { os } = d;
  const networkNames = _unique(d.interfaces.filter((i) => i.type === 'network' && i.source).map((i) => i.source!));
  const bridgeNames = _unique(d.interfaces.filter((i) => i.type === 'bridge' && i.source).map((i) => i.source!));
  const writableLoader = os.loader && !os.loader.readOnly ? [os.loader.path] : [];
  const readOnlyLoader = os.loader?.readOnly ? [os.loader.path] : [];
  return {
    name: domain.name,
    driver: 'libvirt',
    pid: host.pid ?? 0,
    state: domain.state,
    memoryBytes: d.memoryBytes,
    disks,
    hypervisorVersion: host.hypervisorVersion ?? '',
    auxFiles: [os.kernel, os.initrd, os.dtb, ...writableLoader].filter((f) => f !== undefined),
    ownFiles: [
      ...(os.nvram ? [{ path: os.nvram.path, what: 'UEFI variable store', ...(os.nvram.template ? { template: os.nvram.template } : {}) }] : []),
      ...(d.tpm && d.uuid ? [tpmState(d.uuid, d.tpm.version)] : []),
    ],
    uuid: d.uuid,
    unmovableDisks,
    hostFiles: [...readOnlyLoader, ...(os.nvram?.template ? [os.nvram.template] : [])],
    chardevFiles: d.chardevFiles,
    cpuModel: d.cpu ? (d.cpu.model ?? d.cpu.mode) : undefined,
    networks: networkNames,
    bridges: bridgeNames,
    attachments: [...networkNames.map((n) => `network:${n}`), ...bridgeNames.map((b) => `bridge:${b}`)],
  };
}

/** Why the disk cannot move, 'empty' for a drive without a medium, undefined when it can. */
function _whyUnmovable(disk: DomainDisk, images: ReadonlyMap<string, ImageInfo[]>): string | undefined {
  if (disk.type === 'network') return 'a network disk without a source';
  if (disk.type === 'volume' && !disk.path) return `volume "${disk.volume}" of pool "${disk.pool}" has no path: is the pool active?`;
  if (!disk.path) return disk.device === 'cdrom' || disk.device === 'floppy' ? 'empty' : `a ${disk.type} disk without a path`;
  if (!images.get(disk.path)?.length) return `no image information for "${disk.path}"`;
  return undefined;
}

/** A network disk's source as a URL (nbd://host:port/export, rbd://monitor/pool/image): how ferry names it. */
export function networkDiskUrl(network: NonNullable<DomainDisk['network']>): string {
  const [host] = network.hosts;
  const authority = host ? `${host.name}${host.port ? `:${host.port}` : ''}` : '';
  return `${network.protocol}://${authority}/${network.name ?? ''}`;
}

/** libvirt's cache modes as QEMU's three cache flags (what query-block reports for a QEMU VM). */
function _cacheFlags(mode: string | undefined): VmDisk['cache'] {
  switch (mode) {
    case 'none':
      return { writeback: true, direct: true, noFlush: false };
    case 'writethrough':
      return { writeback: false, direct: false, noFlush: false };
    case 'directsync':
      return { writeback: false, direct: true, noFlush: false };
    case 'unsafe':
      return { writeback: true, direct: false, noFlush: true };
    default: // writeback, and QEMU's default when libvirt sets none
      return { writeback: true, direct: false, noFlush: false };
  }
}

function _unique(list: string[]): string[] {
  return [...new Set(list)];
}

/**
 * Where libvirt keeps an emulated TPM's state: under the domain's UUID,
 * which a move keeps. A live migration carries it in QEMU's stream (libvirt
 * then removes the source's); a VM that is off has it copied.
 */
export function tpmState(uuid: string, version?: string): VmOwnFile {
  const file = version === '2.0' ? 'tpm2/tpm2-00.permall' : 'tpm1_2/tpm-00.permall';
  const dir = `/var/lib/libvirt/swtpm/${uuid}`;
  return { path: `${dir}/${file}`, what: 'TPM state', carriedLive: true, ownDir: dir };
}
