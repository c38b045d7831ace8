/** The disk's partition table (MBR with logical partitions, or GPT), as sfdisk reads it. */
import { run } from '../util/exec.js';

export interface Partition {
  number: number;
  /** Bytes from the start of the disk. */
  offset: number;
  size: number;
  /** MBR type byte in hex ("83") or GPT type GUID. */
  type: string;
  bootable: boolean;
  /** GPT partition GUID, or the MBR disk id with the number ("0a1b2c3d-01"): PARTUUID. */
  partUuid?: string;
  name?: string;
}

export interface PartitionTable {
  kind: 'mbr' | 'gpt' | 'none';
  id?: string;
  partitions: Partition[];
}

interface SfdiskJson {
  partitiontable: {
    label: string;
    id?: string;
    sectorsize?: number;
    partitions?: { node: string; start: number; size: number; type: string; bootable?: boolean; uuid?: string; name?: string }[];
  };
}

const EXTENDED = new Set(['5', 'f', '85']);

export function parseSfdiskJson(json: string): PartitionTable {
  const t = (JSON.parse(json) as SfdiskJson).partitiontable;
  const sector = t.sectorsize ?? 512;
  const kind = t.label === 'gpt' ? 'gpt' : 'mbr';
  const diskId = t.id?.replace(/^0x/, '');
  const partitions = (t.partitions ?? [])
    .filter((p) => !(kind === 'mbr' && EXTENDED.has(p.type.toLowerCase())))
    .map((p) => {
      const number = Number(/(\d+)$/.exec(p.node)?.[1] ?? 0);
      return {
        number,
        offset: p.start * sector,
        size: p.size * sector,
        type: p.type.toLowerCase(),
        bootable: p.bootable === true,
        partUuid: kind === 'gpt' ? p.uuid?.toLowerCase() : diskId ? `${diskId}-${String(number).padStart(2, '0')}` : undefined,
        name: p.name,
      };
    });
  return { kind, id: diskId, partitions };
}

/** Reads the partition table of a raw disk (file or block device); kind 'none' when it has none. */
export async function readPartitionTable(rawPath: string): Promise<PartitionTable> {
  const r = await run('sfdisk', ['--json', rawPath], { allowFailure: true });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return { kind: 'none', partitions: [] };
  return parseSfdiskJson(r.stdout);
}
