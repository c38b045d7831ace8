/**
 * Where LVM keeps a logical volume's bytes, for hosts without device-mapper
 * (which alone can activate an LV): the volume groups are read with the LVM
 * tools in read-only reporting mode, limited to the given devices (nothing
 * is activated, locked or cached), and a logical volume that is one linear
 * run of extents can be reached as a loop device at that run's offset on
 * its physical volume. Guest inspection uses it for the LVs inside a disk
 * image; sync, for a destination LV on such a host.
 */
import { run } from '../util/exec.js';

export interface PhysicalVolume {
  /** The loop device (or block device) ferry attached. */
  device: string;
  uuid: string;
  /** Bytes from the start of the PV to its first extent. */
  peStart: number;
  size: number;
}

export interface ExtentRange {
  /** The PV's device as LVM names it ("[unknown]" for a PV on another disk). */
  device: string;
  first: number;
  last: number;
}

export interface LvSegment {
  type: string;
  /** First logical extent of this segment in the LV. */
  startExtent: number;
  extents: number;
  ranges: ExtentRange[];
}

export interface LogicalVolume {
  vg: string;
  name: string;
  uuid: string;
  size: number;
  attr: string;
  segments: LvSegment[];
}

export interface VolumeGroup {
  name: string;
  uuid: string;
  size: number;
  free: number;
  extentSize: number;
  /** PVs the VG has that are not on this disk (another disk of the guest). */
  missingPvs: number;
  pvs: PhysicalVolume[];
  lvs: LogicalVolume[];
}

/** Where an LV's data lies on the PV's device, or why it cannot be one loop device. */
export type LvPlacement = { ok: true; pv: PhysicalVolume; offset: number; size: number } | { ok: false; reason: string };

type Row = Record<string, string>;

function reportRows(json: string, kind: 'vg' | 'pv' | 'lv'): Row[] {
  if (json.trim() === '') return [];
  const parsed = JSON.parse(json) as { report?: Record<string, Row[] | undefined>[] };
  return (parsed.report ?? []).flatMap((r) => r[kind] ?? []);
}

const num = (s: string | undefined): number => (s === undefined || s === '' ? 0 : Number(s));

/** "/dev/loop3:0-29 /dev/loop4:10-19" -> ranges (one per stripe; one for linear). */
export function parsePeRanges(text: string): ExtentRange[] {
  return text
    .split(/\s+/)
    .filter((t) => t !== '')
    .map((t) => {
      const m = /^(.*):(\d+)-(\d+)$/.exec(t);
      if (!m) throw new Error(`Cannot read the LVM extent range "${t}"`);
      return { device: m[1]!, first: Number(m[2]), last: Number(m[3]) };
    });
}

/**
 * Builds the volume groups from `vgs`, `pvs` and `lvs --segments` JSON
 * reports (sizes in bytes, no suffix: --units b --nosuffix).
 */
export function parseLvmReports(vgsJson: string, pvsJson: string, lvsJson: string): VolumeGroup[] {
  const vgs = new Map<string, VolumeGroup>();
  for (const r of reportRows(vgsJson, 'vg')) {
    vgs.set(r.vg_name!, {
      name: r.vg_name!,
      uuid: r.vg_uuid ?? '',
      size: num(r.vg_size),
      free: num(r.vg_free),
      extentSize: num(r.vg_extent_size),
      missingPvs: num(r.vg_missing_pv_count),
      pvs: [],
      lvs: [],
    });
  }
  for (const r of reportRows(pvsJson, 'pv')) {
    const vg = vgs.get(r.vg_name ?? '');
    if (vg) vg.pvs.push({ device: r.pv_name!, uuid: r.pv_uuid ?? '', peStart: num(r.pe_start), size: num(r.pv_size) });
  }
  for (const r of reportRows(lvsJson, 'lv')) {
    const vg = vgs.get(r.vg_name ?? '');
    if (!vg) continue;
    let lv = vg.lvs.find((l) => l.name === r.lv_name);
    if (!lv) {
      lv = { vg: vg.name, name: r.lv_name!, uuid: r.lv_uuid ?? '', size: num(r.lv_size), attr: r.lv_attr ?? '', segments: [] };
      vg.lvs.push(lv);
    }
    lv.segments.push({ type: r.segtype ?? '', startExtent: num(r.seg_start_pe), extents: num(r.seg_size_pe), ranges: parsePeRanges(r.seg_pe_ranges ?? '') });
  }
  for (const vg of vgs.values()) for (const lv of vg.lvs) lv.segments.sort((a, b) => a.startExtent - b.startExtent);
  return [...vgs.values()];
}

/** Where the LV's bytes are on its PV, when they are one run of extents on a PV ferry attached. */
export function placeLogicalVolume(vg: VolumeGroup, lv: LogicalVolume): LvPlacement {
  if (lv.segments.length === 0) return { ok: false, reason: 'it has no segments' };
  if (lv.segments.length > 1) return { ok: false, reason: `it has ${lv.segments.length} segments, which only device-mapper can join` };
  const seg = lv.segments[0]!;
  // A striped segment with one stripe is laid out exactly like a linear one.
  const linear = seg.type === 'linear' || (seg.type === 'striped' && seg.ranges.length === 1);
  if (!linear) return { ok: false, reason: `its segment type is ${seg.type}, which needs device-mapper` };
  const range = seg.ranges[0];
  if (!range) return { ok: false, reason: 'its segment names no physical extents' };
  const pv = vg.pvs.find((p) => p.device === range.device);
  if (!pv) return { ok: false, reason: 'its extents are on a physical volume that is not on this disk' };
  const extents = range.last - range.first + 1;
  if (extents !== seg.extents) return { ok: false, reason: `its segment covers ${seg.extents} extents but its range ${range.first}-${range.last} does not` };
  const offset = pv.peStart + range.first * vg.extentSize;
  const size = extents * vg.extentSize;
  if (offset + size > pv.size + pv.peStart) return { ok: false, reason: 'its extents lie past the end of its physical volume' };
  return { ok: true, pv, offset, size };
}

/** The device-mapper name of an LV: hyphens in either name are doubled ("my-vg", "root" -> "my--vg-root"). */
export function mapperName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** An LV as device paths name it: by VG and LV name, or by the two UUIDs (dm-uuid). */
export interface LvIdentity {
  vg: string;
  name: string;
  uuid: string;
  vgUuid: string;
}

/**
 * The LV an LVM device path names, or undefined: /dev/VG/LV, /dev/mapper/VG-LV,
 * /dev/disk/by-id/dm-name-VG-LV and dm-uuid-LVM-<vg uuid><lv uuid>.
 */
export function lvForDevicePath<T extends LvIdentity>(spec: string, lvs: readonly T[]): T | undefined {
  const direct = /^\/dev\/([^/]+)\/([^/]+)$/.exec(spec);
  if (direct && !['mapper', 'disk'].includes(direct[1]!)) return lvs.find((l) => l.vg === direct[1] && l.name === direct[2]);
  const mapped = /^\/dev\/(?:mapper\/|disk\/by-id\/dm-name-)(.+)$/.exec(spec);
  if (mapped) return lvs.find((l) => mapperName(l.vg, l.name) === mapped[1]);
  const byUuid = /^\/dev\/disk\/by-id\/dm-uuid-LVM-([A-Za-z0-9]{64})$/.exec(spec);
  if (byUuid) {
    const dashless = (u: string): string => u.replace(/-/g, '');
    return lvs.find((l) => `${dashless(l.vgUuid)}${dashless(l.uuid)}` === byUuid[1]);
  }
  return undefined;
}

/**
 * LVM configuration that sees only `devices` and touches nothing on the
 * host: no devices file, no hints, no udev, no backups, no monitoring.
 */
export function lvmConfig(devices: readonly string[]): string {
  const accept = devices.map((d) => `"a|^${d.replace(/[|"\\]/g, '')}$|"`).join(',');
  const filter = `[${accept}${accept ? ',' : ''}"r|.*|"]`;
  return [
    `devices { filter=${filter} global_filter=${filter} use_devicesfile=0 obtain_device_list_from_udev=0 external_device_info_source="none" hints="none" }`,
    'activation { udev_sync=0 udev_rules=0 monitoring=0 }',
    'backup { backup=0 archive=0 }',
    'global { use_lvmlockd=0 }',
  ].join(' ');
}

async function lvmReport(tool: 'vgs' | 'pvs' | 'lvs', fields: string, devices: readonly string[]): Promise<string> {
  const args = ['--config', lvmConfig(devices), '--readonly', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', fields];
  const r = await run(tool, args, { allowFailure: true, env: { LVM_SUPPRESS_FD_WARNINGS: '1' } });
  if (r.exitCode !== 0 && r.stdout.trim() === '') throw new Error(`${tool} failed: ${r.stderr.trim().split('\n').pop() ?? `exit code ${r.exitCode}`}`);
  return r.stdout;
}

/** Reads the volume groups on `devices` (the PVs ferry attached) without activating anything. */
export async function readVolumeGroups(devices: readonly string[]): Promise<VolumeGroup[]> {
  if (devices.length === 0) return [];
  const vgs = await lvmReport('vgs', 'vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_missing_pv_count', devices);
  const pvs = await lvmReport('pvs', 'pv_name,pv_uuid,pe_start,pv_size,vg_name', devices);
  const lvs = await lvmReport('lvs', 'vg_name,lv_name,lv_uuid,lv_size,lv_attr,segtype,seg_start_pe,seg_size_pe,seg_pe_ranges', devices);
  return parseLvmReports(vgs, pvs, lvs);
}
