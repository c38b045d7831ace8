/** The Linux bridges on this host, which a bridge interface of a domain attaches to. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isSystemError } from '../../../util/errors.js';

export interface LinuxBridge {
  name: string;
  /** The interfaces enslaved to it (a NIC, the tap devices of running guests). */
  ports: string[];
}

/** Every bridge in `sysClassNet` (a test passes a directory of its own): the interfaces with a bridge/ directory. */
export async function listLinuxBridges(sysClassNet = '/sys/class/net'): Promise<LinuxBridge[]> {
  const bridges: LinuxBridge[] = [];
  for (const name of (await readdir(sysClassNet)).sort()) {
    try {
      await readdir(join(sysClassNet, name, 'bridge'));
    } catch (e) {
      if (isSystemError(e, 'ENOENT') || isSystemError(e, 'ENOTDIR')) continue; // not a bridge
      throw e;
    }
    const ports = await readdir(join(sysClassNet, name, 'brif')).catch(() => []);
    bridges.push({ name, ports: ports.sort() });
  }
  return bridges;
}
