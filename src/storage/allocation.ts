/**
 * Which byte ranges of a disk hold data, from the format's own metadata
 * (qcow2 cluster tables) or the filesystem's (SEEK_DATA/SEEK_HOLE, which
 * qemu-img uses for raw files). Everything else reads as zeros and costs
 * nothing to compare or send.
 */
import { run } from '../util/exec.js';
import { FerryError } from '../util/errors.js';

export interface ByteRange {
  start: number;
  length: number;
}

interface MapEntry {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
}

/**
 * Data ranges of an image file (sorted, merged). Block devices have no map:
 * their whole extent counts as data.
 */
export async function dataRanges(path: string, format: string, size: number, kind: 'file' | 'block'): Promise<ByteRange[]> {
  if (kind === 'block') return size > 0 ? [{ start: 0, length: size }] : [];
  const r = await run('qemu-img', ['map', '-U', '--output=json', '-f', format, path], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('COMMAND_FAILED', `Cannot map the allocation of "${path}": ${r.stderr.trim().split('\n').pop()}`, {
      hint: 'check that qemu-img can open the image (qemu-img map FILE)',
    });
  }
  return parseMap(JSON.parse(r.stdout) as MapEntry[]);
}

/** Turns qemu-img map entries into merged data ranges; exported for tests. */
export function parseMap(entries: MapEntry[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (const e of entries) {
    if (!e.data || e.zero) continue;
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length });
  }
  return out;
}

/**
 * For each block of `blockSize` bytes, whether it holds any data per the
 * map. Blocks marked false read as zeros without being read.
 */
export function blocksWithData(ranges: ByteRange[], size: number, blockSize: number): Uint8Array {
  const count = Math.ceil(size / blockSize);
  const flags = new Uint8Array(count);
  for (const r of ranges) {
    const first = Math.floor(r.start / blockSize);
    const last = Math.min(count - 1, Math.floor((r.start + r.length - 1) / blockSize));
    for (let b = first; b <= last; b++) flags[b] = 1;
  }
  return flags;
}
