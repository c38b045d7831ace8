/**
 * A libvirt domain's XML, as `virsh dumpxml` prints it: read into a typed
 * description, and edited for a define on another host. Edits work on the
 * DOM and serialise it again, so that everything ferry does not touch (devices
 * it does not know, their addresses, metadata) reaches the target as it was;
 * only the quotes change (the serialiser writes double quotes).
 */
import { DOMParser, XMLSerializer, onErrorStopParsing, type Document, type Element } from '@xmldom/xmldom';
import { FerryError, messageOf } from '../../util/errors.js';
import type { DiskPlan } from '../driver.js';

export interface DomainCpuFeature {
  name: string;
  /** force, require, optional, disable or forbid. */
  policy: string;
}

export interface DomainCpu {
  /** custom, host-model, host-passthrough or maximum. */
  mode: string;
  match?: string;
  check?: string;
  model?: string;
  /** allow or forbid: whether libvirt may fall back to a model the host supports. */
  fallback?: string;
  vendor?: string;
  features: DomainCpuFeature[];
}

export interface DomainOs {
  /** hvm, linux (Xen PV), exe (containers). */
  type?: string;
  arch?: string;
  machine?: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  dtb?: string;
  /** Firmware (OVMF, SeaBIOS) when not the emulator's default. */
  loader?: { path: string; readOnly: boolean; type?: string };
  /** The VM's own UEFI variable store: it moves with the VM. */
  nvram?: { path: string; template?: string };
  boot: string[];
}

/** One image of a disk's backing chain (a <backingStore>). */
export interface DiskBacking {
  type: string;
  format?: string;
  path?: string;
}

export interface DiskSecret {
  /** ceph, iscsi... */
  type?: string;
  uuid?: string;
  usage?: string;
}

export interface DomainDisk {
  /** disk, cdrom, floppy or lun. */
  device: string;
  /** file, block, volume, network, dir, nvme... */
  type: string;
  /**
   * The file or block device: `source file=` or `source dev=`. For a volume
   * disk the XML has no path; the host handlers fill in the volume's.
   */
  path?: string;
  pool?: string;
  volume?: string;
  network?: { protocol: string; name?: string; hosts: { name: string; port?: number }[] };
  /** The libvirt secret a network disk logs in with (Ceph, iSCSI CHAP), by UUID or by its type and usage name. */
  secret?: DiskSecret;
  /** The image format (`driver type=`): raw, qcow2... */
  format?: string;
  /** none, writethrough, writeback, directsync or unsafe; unset means the hypervisor's default. */
  cache?: string;
  io?: string;
  discard?: string;
  /** The guest's name for it, e.g. vda. */
  target: string;
  bus?: string;
  readOnly: boolean;
  shareable: boolean;
  /** Backing images below the source, nearest first, as far as the XML tells. */
  backingChain: DiskBacking[];
}

export interface DomainInterface {
  /** network, bridge, direct, user, ethernet... */
  type: string;
  /** The libvirt network, Linux bridge or host device it attaches to. */
  source?: string;
  /** For a direct (macvtap) interface: vepa, bridge, private or passthrough. */
  sourceMode?: string;
  mac?: string;
  model?: string;
}

export interface DomainGraphics {
  type: string;
  port?: number;
  autoport?: boolean;
  listen?: string;
}

export interface DomainDescription {
  name: string;
  uuid?: string;
  /** qemu, kvm, xen... */
  type: string;
  /** Set only in a running domain's XML. */
  id?: number;
  memoryBytes: number;
  currentMemoryBytes?: number;
  vcpus: number;
  cpu?: DomainCpu;
  emulator?: string;
  os: DomainOs;
  disks: DomainDisk[];
  interfaces: DomainInterface[];
  /** Files the serial ports, consoles and channels write to (chardevs of type file); their directories must exist on a host that starts the VM. */
  chardevFiles: string[];
  graphics: DomainGraphics[];
  /** Host devices passed through (PCI, SCSI, mediated, a host TPM) and virtiofs shares, as "host PCI device 0000:01:00.0": libvirt migrates no running domain that has one. */
  passthrough: string[];
  /** An emulated TPM (swtpm): its state is the VM's own, kept by libvirt under the domain's UUID. */
  tpm?: { version?: string };
}

/** Reads `virsh dumpxml` output (live or inactive). */
export function parseDomainXml(xml: string): DomainDescription {
  const domain = _parseDomain(xml);
  const os = _child(domain, 'os');
  const devices = _child(domain, 'devices');
  const memory = _child(domain, 'memory');
  const currentMemory = _child(domain, 'currentMemory');
  const name = _text(_child(domain, 'name'));
  if (!name) throw new FerryError('BAD_FORMAT', 'Cannot read domain XML: it has no <name>', { hint: 'pass the output of "virsh dumpxml DOMAIN"' });
  const id = domain.getAttribute('id');
  return {
    name,
    uuid: _text(_child(domain, 'uuid')),
    type: domain.getAttribute('type') ?? '',
    id: id ? Number(id) : undefined,
    memoryBytes: memory ? _memoryBytes(memory) : 0,
    currentMemoryBytes: currentMemory ? _memoryBytes(currentMemory) : undefined,
    vcpus: Number(_text(_child(domain, 'vcpu')) ?? 1),
    cpu: _readCpu(_child(domain, 'cpu')),
    emulator: _text(_child(devices, 'emulator')),
    os: _readOs(os),
    disks: _children(devices, 'disk').map(_readDisk),
    interfaces: _children(devices, 'interface').map(_readInterface),
    chardevFiles: [...new Set(_chardevFiles(devices))],
    graphics: _children(devices, 'graphics').map(_readGraphics),
    passthrough: _passthrough(devices),
    tpm: _emulatedTpm(devices),
  };
}

function _emulatedTpm(devices: Element | undefined): DomainDescription['tpm'] {
  const tpm = _children(devices, 'tpm').find((t) => _child(t, 'backend')?.getAttribute('type') === 'emulator');
  if (!tpm) return undefined;
  return { version: _child(tpm, 'backend')?.getAttribute('version') ?? undefined };
}

function _passthrough(devices: Element | undefined): string[] {
  const found: string[] = [];
  for (const hostdev of _children(devices, 'hostdev')) {
    const type = hostdev.getAttribute('type') ?? '';
    const source = _child(hostdev, 'source');
    if (type === 'pci') {
      const a = _child(source, 'address');
      const hex = (name: string, width: number): string => (a?.getAttribute(name) ?? '0').replace(/^0x/, '').padStart(width, '0');
      found.push(`host PCI device ${hex('domain', 4)}:${hex('bus', 2)}:${hex('slot', 2)}.${hex('function', 1)}`);
    } else if (type === 'mdev') {
      found.push(`mediated device ${_child(source, 'address')?.getAttribute('uuid') ?? ''}`.trim());
    } else if (type === 'scsi' || type === 'scsi_host') {
      found.push(`host SCSI device ${_child(source, 'adapter')?.getAttribute('name') ?? source?.getAttribute('wwpn') ?? ''}`.trim());
    }
    // USB devices libvirt migrates (it looks for the device again on the target).
  }
  for (const tpm of _children(devices, 'tpm')) {
    const backend = _child(tpm, 'backend');
    if (backend?.getAttribute('type') === 'passthrough') found.push(`host TPM ${_child(backend, 'device')?.getAttribute('path') ?? ''}`.trim());
  }
  for (const fs of _children(devices, 'filesystem')) {
    if (_child(fs, 'driver')?.getAttribute('type') === 'virtiofs') found.push(`virtiofs share of ${_child(fs, 'source')?.getAttribute('dir') ?? 'a host directory'}`);
  }
  return found;
}

/** A domain's <cpu> as its own document, for `virsh hypervisor-cpu-compare`; undefined when the domain leaves the CPU to the hypervisor. */
export function domainCpuXml(xml: string): string | undefined {
  const cpu = _child(_parseDomain(xml), 'cpu');
  return cpu ? new XMLSerializer().serializeToString(cpu) : undefined;
}

/** Where one disk moves: its source on the old host and its path on the new one. */
export interface DiskMove {
  /** The disk's path (file or block disk), or the pool volume of a volume disk. */
  from: string | { pool: string; volume: string };
  to: string;
  /** What `to` is: a regular file or a block device (an LV). */
  kind: 'file' | 'block';
  /** The image format at `to` when it changes (a qcow2 file copied onto a raw LV). */
  format?: string;
}

/** A disk the domain names by its pool and volume on the target too: one --disk-map did not send to a path of its own. */
export function staysVolume(plan: DiskPlan): boolean {
  return plan.disk.volume !== undefined && plan.targetPath === plan.disk.path;
}

/** The moves a plan makes of a domain's disks: those that change path (shared disks stay where they are). */
export function diskMoves(plans: readonly DiskPlan[]): DiskMove[] {
  return plans
    .filter((p) => !p.shared && p.targetPath !== p.disk.path)
    .map((p) => ({
      // A volume disk names its pool and volume, not the path: found by those, it becomes a file or block disk at its new path.
      from: p.disk.volume ? { pool: p.disk.volume.pool, volume: p.disk.volume.name } : p.disk.path,
      to: p.targetPath,
      kind: p.targetDevice || p.targetLv ? 'block' : 'file',
      format: p.targetFormat,
    }));
}

/**
 * The domain's XML with each moved disk pointing at its new path, everything
 * else as it was. A disk moved onto a block device becomes a block disk.
 * The moved disks lose their <backingStore>: it described the old chain, and
 * libvirt trusts a chain given in the XML over the image's own header.
 */
export function mapDiskSources(xml: string, moves: readonly DiskMove[]): string {
  const doc = _parseDocument(xml);
  const disks = _children(_child(doc.documentElement!, 'devices'), 'disk');
  for (const move of moves) {
    const disk = disks.find((d) => _isSource(d, move.from));
    if (!disk) {
      const from = typeof move.from === 'string' ? move.from : `${move.from.pool}/${move.from.volume}`;
      const known = disks.map((d) => _sourceName(d)).filter((s) => s !== undefined);
      throw new FerryError('NOT_FOUND', `Cannot move disk "${from}": the domain has no disk with that source`, {
        hint: known.length ? `its disks: ${known.join(', ')}` : 'the domain has no disk with a source',
      });
    }
    _moveDisk(doc, disk, move);
  }
  return new XMLSerializer().serializeToString(doc);
}

/**
 * The domain's XML cleaned of what belongs to one running instance on one
 * host, for `virsh define` elsewhere: the domain id, the device aliases
 * libvirt made up, the node indexes of disk sources, the labels of a dynamic
 * seclabel and, unless kept, every <backingStore> (the target then reads the
 * chains from the images, which is right whether they were copied as they
 * were or flattened). User aliases (ua-*) stay. `virsh define` takes the live
 * XML as well, but would pin those stale chains in the new definition.
 */
export function definableDomainXml(xml: string, options: { keepBackingChains?: boolean } = {}): string {
  const doc = _parseDocument(xml);
  const domain = doc.documentElement!;
  domain.removeAttribute('id');
  for (const alias of _descendants(domain, 'alias')) {
    if (!(alias.getAttribute('name') ?? '').startsWith('ua-')) _remove(alias);
  }
  for (const disk of _children(_child(domain, 'devices'), 'disk')) {
    for (const source of _descendants(disk, 'source')) source.removeAttribute('index');
    for (const backing of _children(disk, 'backingStore')) {
      if (options.keepBackingChains) {
        for (const b of [backing, ..._descendants(backing, 'backingStore')]) b.removeAttribute('index');
      } else {
        _remove(backing);
      }
    }
  }
  for (const seclabel of _children(domain, 'seclabel')) {
    if (seclabel.getAttribute('type') !== 'dynamic') continue;
    for (const label of [..._children(seclabel, 'label'), ..._children(seclabel, 'imagelabel')]) _remove(label);
  }
  return new XMLSerializer().serializeToString(doc);
}

// libvirt's units, not ferry's: in libvirt "KB" is 1000 bytes and "k" 1024.
const _MEMORY_UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1e3,
  k: 2 ** 10,
  kib: 2 ** 10,
  mb: 1e6,
  m: 2 ** 20,
  mib: 2 ** 20,
  gb: 1e9,
  g: 2 ** 30,
  gib: 2 ** 30,
  tb: 1e12,
  t: 2 ** 40,
  tib: 2 ** 40,
  pb: 1e15,
  p: 2 ** 50,
  pib: 2 ** 50,
  eb: 1e18,
  e: 2 ** 60,
  eib: 2 ** 60,
};

function _memoryBytes(el: Element): number {
  const unit = (el.getAttribute('unit') ?? 'KiB').toLowerCase();
  const factor = _MEMORY_UNITS[unit];
  const value = Number(_text(el));
  if (factor === undefined || !Number.isFinite(value)) {
    throw new FerryError('BAD_FORMAT', `Cannot read domain XML: memory "${_text(el)}" in unit "${unit}"`, { hint: 'pass the output of "virsh dumpxml DOMAIN"' });
  }
  return value * factor;
}

function _parseDocument(xml: string): Document {
  try {
    return new DOMParser({ onError: onErrorStopParsing }).parseFromString(xml, 'text/xml');
  } catch (e) {
    throw new FerryError('BAD_FORMAT', `Cannot read domain XML: ${messageOf(e)}`, { hint: 'pass the output of "virsh dumpxml DOMAIN"', cause: e });
  }
}

function _parseDomain(xml: string): Element {
  const domain = _parseDocument(xml).documentElement;
  if (!domain || domain.tagName !== 'domain') {
    throw new FerryError('BAD_FORMAT', `Cannot read domain XML: its root is <${domain?.tagName ?? ''}>, not <domain>`, { hint: 'pass the output of "virsh dumpxml DOMAIN"' });
  }
  return domain;
}

function _readCpu(cpu: Element | undefined): DomainCpu | undefined {
  if (!cpu) return undefined;
  const model = _child(cpu, 'model');
  return {
    mode: cpu.getAttribute('mode') ?? 'custom',
    match: cpu.getAttribute('match') ?? undefined,
    check: cpu.getAttribute('check') ?? undefined,
    model: _text(model),
    fallback: model?.getAttribute('fallback') ?? undefined,
    vendor: _text(_child(cpu, 'vendor')),
    features: _children(cpu, 'feature').map((f) => ({ name: f.getAttribute('name') ?? '', policy: f.getAttribute('policy') ?? 'require' })),
  };
}

function _readOs(os: Element | undefined): DomainOs {
  const type = _child(os, 'type');
  const loader = _child(os, 'loader');
  const nvram = _child(os, 'nvram');
  const loaderPath = _text(loader);
  const nvramPath = _text(nvram);
  return {
    type: _text(type),
    arch: type?.getAttribute('arch') ?? undefined,
    machine: type?.getAttribute('machine') ?? undefined,
    kernel: _text(_child(os, 'kernel')),
    initrd: _text(_child(os, 'initrd')),
    cmdline: _text(_child(os, 'cmdline')),
    dtb: _text(_child(os, 'dtb')),
    loader: loader && loaderPath ? { path: loaderPath, readOnly: loader.getAttribute('readonly') === 'yes', type: loader.getAttribute('type') ?? undefined } : undefined,
    nvram: nvram && nvramPath ? { path: nvramPath, template: nvram.getAttribute('template') ?? undefined } : undefined,
    boot: _children(os, 'boot').map((b) => b.getAttribute('dev') ?? ''),
  };
}

function _readDisk(disk: Element): DomainDisk {
  const source = _child(disk, 'source');
  const driver = _child(disk, 'driver');
  const target = _child(disk, 'target');
  const type = disk.getAttribute('type') ?? 'file';
  const secret = _readSecret(_child(_child(disk, 'auth') ?? _child(source, 'auth'), 'secret'));
  return {
    device: disk.getAttribute('device') ?? 'disk',
    type,
    path: _sourcePath(source),
    pool: source?.getAttribute('pool') ?? undefined,
    volume: source?.getAttribute('volume') ?? undefined,
    network:
      type === 'network' && source
        ? {
            protocol: source.getAttribute('protocol') ?? '',
            name: source.getAttribute('name') ?? undefined,
            hosts: _children(source, 'host').map((h) => ({ name: h.getAttribute('name') ?? '', port: h.getAttribute('port') ? Number(h.getAttribute('port')) : undefined })),
          }
        : undefined,
    format: driver?.getAttribute('type') ?? undefined,
    cache: driver?.getAttribute('cache') ?? undefined,
    io: driver?.getAttribute('io') ?? undefined,
    discard: driver?.getAttribute('discard') ?? undefined,
    target: target?.getAttribute('dev') ?? '',
    bus: target?.getAttribute('bus') ?? undefined,
    ...(secret ? { secret } : {}),
    readOnly: _child(disk, 'readonly') !== undefined,
    shareable: _child(disk, 'shareable') !== undefined,
    backingChain: _readBackingChain(disk),
  };
}

function _readSecret(secret: Element | undefined): DiskSecret | undefined {
  if (!secret) return undefined;
  return { type: secret.getAttribute('type') ?? undefined, uuid: secret.getAttribute('uuid') ?? undefined, usage: secret.getAttribute('usage') ?? undefined };
}

function _readBackingChain(disk: Element): DiskBacking[] {
  const chain: DiskBacking[] = [];
  // An empty <backingStore/> ends the chain: libvirt knows there is nothing below.
  for (let b = _child(disk, 'backingStore'); b && b.hasAttribute('type'); b = _child(b, 'backingStore')) {
    chain.push({ type: b.getAttribute('type')!, format: _child(b, 'format')?.getAttribute('type') ?? undefined, path: _sourcePath(_child(b, 'source')) });
  }
  return chain;
}

function _readInterface(nic: Element): DomainInterface {
  const source = _child(nic, 'source');
  return {
    type: nic.getAttribute('type') ?? '',
    source: source ? (source.getAttribute('network') ?? source.getAttribute('bridge') ?? source.getAttribute('dev') ?? undefined) : undefined,
    sourceMode: source?.getAttribute('mode') ?? undefined,
    mac: _child(nic, 'mac')?.getAttribute('address') ?? undefined,
    model: _child(nic, 'model')?.getAttribute('type') ?? undefined,
  };
}

function _readGraphics(g: Element): DomainGraphics {
  const port = g.getAttribute('port');
  const autoport = g.getAttribute('autoport');
  return {
    type: g.getAttribute('type') ?? '',
    port: port ? Number(port) : undefined,
    autoport: autoport ? autoport === 'yes' : undefined,
    listen: g.getAttribute('listen') ?? _child(g, 'listen')?.getAttribute('address') ?? undefined,
  };
}

function _chardevFiles(devices: Element | undefined): string[] {
  const chardevs = ['serial', 'console', 'parallel', 'channel'].flatMap((tag) => _children(devices, tag));
  return chardevs.filter((c) => c.getAttribute('type') === 'file').flatMap((c) => _sourcePath(_child(c, 'source')) ?? []);
}

function _sourcePath(source: Element | undefined): string | undefined {
  return source?.getAttribute('file') ?? source?.getAttribute('dev') ?? source?.getAttribute('path') ?? undefined;
}

function _sourceName(disk: Element): string | undefined {
  const source = _child(disk, 'source');
  if (!source) return undefined;
  if (source.hasAttribute('pool')) return `${source.getAttribute('pool')}/${source.getAttribute('volume')}`;
  return _sourcePath(source);
}

function _isSource(disk: Element, from: DiskMove['from']): boolean {
  const source = _child(disk, 'source');
  if (!source) return false;
  if (typeof from !== 'string') return source.getAttribute('pool') === from.pool && source.getAttribute('volume') === from.volume;
  const type = disk.getAttribute('type');
  return (type === 'file' && source.getAttribute('file') === from) || (type === 'block' && source.getAttribute('dev') === from);
}

function _moveDisk(doc: Document, disk: Element, move: DiskMove): void {
  const oldSource = _child(disk, 'source')!;
  const source = doc.createElement('source');
  source.setAttribute(move.kind === 'block' ? 'dev' : 'file', move.to);
  // What a source may carry besides its location (startupPolicy, a <seclabel>, ...) stays.
  const located = ['file', 'dev', 'pool', 'volume', 'mode', 'index'];
  for (let i = 0; i < oldSource.attributes.length; i++) {
    const attr = oldSource.attributes.item(i)!;
    if (!located.includes(attr.name)) source.setAttribute(attr.name, attr.value);
  }
  while (oldSource.firstChild) source.appendChild(oldSource.firstChild);
  disk.replaceChild(source, oldSource);
  disk.setAttribute('type', move.kind);
  if (move.format) _child(disk, 'driver')?.setAttribute('type', move.format);
  for (const backing of _children(disk, 'backingStore')) _remove(backing);
}

/** Removes `el` with the indentation before it, so that the serialised XML keeps its layout. */
function _remove(el: Element): void {
  const before = el.previousSibling;
  if (before && before.nodeType === before.TEXT_NODE && /^\s*$/.test(before.nodeValue ?? '')) before.parentNode?.removeChild(before);
  el.parentNode?.removeChild(el);
}

function _children(parent: Element | undefined, tag: string): Element[] {
  const out: Element[] = [];
  for (let n = parent?.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === n.ELEMENT_NODE && (n as Element).tagName === tag) out.push(n as Element);
  }
  return out;
}

function _child(parent: Element | undefined, tag: string): Element | undefined {
  return _children(parent, tag)[0];
}

function _descendants(parent: Element, tag: string): Element[] {
  return Array.from(parent.getElementsByTagName(tag));
}

function _text(el: Element | undefined): string | undefined {
  const text = el?.textContent?.trim();
  return text ? text : undefined;
}
