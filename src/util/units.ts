/** Sizes in binary units: the sizes users type ("64M") and the MiB figures ferry prints. */
import { FerryError } from './errors.js';

export const KiB = 1 << 10;
export const MiB = 1 << 20;
export const GiB = 1 << 30;
export const TiB = 2 ** 40;

const SIZE = /^(\d+)(?:([KMGT])(?:i?B)?)?$/i;
const UNIT: Record<string, number> = { '': 1, K: KiB, M: MiB, G: GiB, T: TiB };

/**
 * The bytes in a size such as "4096", "64M", "64m", "1GiB" or "2KB" (units
 * are binary: K is 1024), or undefined when `text` is not a size.
 */
export function readSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT[(m[2] ?? '').toUpperCase()]!;
}

/** Like readSize, for a size the user must give: anything else is a usage error. */
export function parseSize(text: string): number {
  const bytes = readSize(text);
  if (bytes === undefined) throw new FerryError('USAGE', `Invalid size "${text}"`, { hint: 'write bytes or a number with K, M, G or T, e.g. 1M' });
  return bytes;
}

/** `bytes` in MiB with `decimals` decimals and no unit: "12.5" for 12.5 MiB, so that "3.0/12.5 MiB" reads well. */
export function formatMiB(bytes: number, decimals = 1): string {
  return (bytes / MiB).toFixed(decimals);
}
