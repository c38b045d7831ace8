/**
 * Lists the files inside an initramfs without unpacking it to disk: a chain
 * of cpio "newc" archives, each plain (early microcode) or compressed (gzip,
 * zstd, xz, lzma, lz4, bzip2), as initramfs-tools and dracut write them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'lzma' | 'lz4' | 'bzip2';

export function detectCompression(b: Buffer): Compression | undefined {
  if (b[0] === 0x1f && (b[1] === 0x8b || b[1] === 0x9e)) return 'gzip';
  if (b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b[0] === 0x5d && b[1] === 0x00 && b[2] === 0x00) return 'lzma';
  if (b.readUInt32LE(0) === 0x184c2102 || b.readUInt32LE(0) === 0x184d2204) return 'lz4';
  if (b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return undefined;
}

const TOOLS: Record<Exclude<Compression, 'gzip'>, string> = { zstd: 'zstd', xz: 'xz', lzma: 'xz', lz4: 'lz4', bzip2: 'bzip2' };

async function decompress(kind: Compression, data: Buffer): Promise<Buffer> {
  if (kind === 'gzip') return gunzipSync(data);
  // The other formats go through their command line tools (trailing padding
  // after the stream, which initramfs writers leave, is tolerated by them).
  const dir = await mkdtemp(join(tmpdir(), 'ferry-initramfs-'));
  try {
    const input = join(dir, 'in');
    const output = join(dir, 'out');
    await writeFile(input, data);
    const r = await run('sh', ['-c', `${TOOLS[kind]} -dc -q "$1" > "$2"`, 'sh', input, output], { allowFailure: true });
    const out = await readFile(output);
    if (r.exitCode !== 0 && out.length === 0) {
      throw new FerryError('BAD_FORMAT', `Cannot decompress the ${kind} part of an initramfs: ${r.stderr.trim()}`, {
        hint: `install "${TOOLS[kind]}" on this host`,
      });
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parses consecutive newc archives from offset; returns names and where parsing stopped. */
export function parseCpioNames(b: Buffer, start = 0): { names: string[]; end: number } {
  const names: string[] = [];
  let pos = start;
  for (;;) {
    while (pos < b.length && b[pos] === 0) pos++;
    if (pos + 110 > b.length) break;
    const magic = b.toString('latin1', pos, pos + 6);
    if (magic !== '070701' && magic !== '070702') break;
    const field = (i: number): number => parseInt(b.toString('latin1', pos + 6 + i * 8, pos + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    const name = b.toString('utf8', pos + 110, pos + 110 + nameSize - 1);
    pos = align4(pos + 110 + nameSize);
    pos = align4(pos + fileSize);
    if (name === 'TRAILER!!!') continue;
    names.push(name.replace(/^\.?\/?/, ''));
  }
  return { names, end: pos };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Every path inside an initramfs image's bytes. */
export async function listInitramfsBuffer(b: Buffer): Promise<string[]> {
  const names: string[] = [];
  let pos = 0;
  for (let guard = 0; guard < 16 && pos < b.length; guard++) {
    const plain = parseCpioNames(b, pos);
    names.push(...plain.names);
    pos = plain.end;
    if (pos >= b.length) break;
    const kind = detectCompression(b.subarray(pos, pos + 8));
    if (!kind) break;
    const inner = await decompress(kind, b.subarray(pos));
    names.push(...(await listInitramfsBuffer(inner)));
    break; // A compressed archive runs to the end of the image.
  }
  return names;
}

export async function listInitramfs(path: string): Promise<string[]> {
  return listInitramfsBuffer(await readFile(path));
}

/** Module names (virtio_blk) present in a file list, with .ko, .ko.xz, .ko.zst or .ko.gz. */
export function modulesIn(names: readonly string[]): Set<string> {
  const mods = new Set<string>();
  for (const n of names) {
    const m = /([^/]+)\.ko(?:\.(?:xz|zst|gz))?$/.exec(n);
    if (m) mods.add(m[1]!.replace(/-/g, '_'));
  }
  return mods;
}
