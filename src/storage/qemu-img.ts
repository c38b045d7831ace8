/** Disk images through qemu-img: what an image is, and creating one. */
import { FerryError } from '../util/errors.js';
import { run } from '../util/exec.js';

export interface ImageInfo {
  filename: string;
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFilename?: string;
  backingFormat?: string;
}

/** The image and its backing chain, top first. `-U` reads images a running VM holds. */
export async function imageChain(path: string): Promise<ImageInfo[]> {
  const r = await run('qemu-img', ['info', '-U', '--output=json', '--backing-chain', path], { allowFailure: true });
  if (r.exitCode !== 0) {
    throw new FerryError('NOT_FOUND', `Cannot read image "${path}": ${r.stderr.trim().split('\n').pop()}`);
  }
  const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
  return list.map((i) => ({
    filename: String(i.filename),
    format: String(i.format),
    virtualSize: Number(i['virtual-size']),
    actualSize: i['actual-size'] === undefined ? undefined : Number(i['actual-size']),
    backingFilename: (i['full-backing-filename'] ?? i['backing-filename']) as string | undefined,
    backingFormat: i['backing-filename-format'] as string | undefined,
  }));
}

export interface CreateImage {
  path: string;
  format: string;
  sizeBytes: number;
  backingFile?: string;
  backingFormat?: string;
}

export async function createImage(spec: CreateImage): Promise<void> {
  const args = ['create', '-q', '-f', spec.format];
  if (spec.backingFile) args.push('-b', spec.backingFile, '-F', spec.backingFormat ?? 'raw');
  args.push(spec.path, String(spec.sizeBytes));
  await run('qemu-img', args);
}
