/**
 * The source's disks after a move: kept, or removed with --delete-source
 * once the target owns the VM (image files and logical volumes). A disk on storage both hosts
 * share is the target's disk too, and a read-only one may be other VMs': neither is removed.
 */
import type { DiskPlan, LiveSteps, StepJournal } from '../drivers/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import type { MigrationSettings } from './settings.js';

/** After the commit point only: the source's disk images go with --delete-source (never one the target shares). */
export async function keepOrDeleteSourceDisks(
  source: AgentClient,
  plans: readonly DiskPlan[],
  settings: MigrationSettings,
  log: (message: string) => void,
  journal: StepJournal,
  steps?: Pick<LiveSteps, 'sourceDisksDeleted'>,
): Promise<void> {
  // A read-only disk (an installer ISO) is often other VMs' too: it stays.
  const own = plans.filter((p) => !p.shared && !p.disk.readOnly);
  if (!settings.deleteSource) return log(`source disks kept on ${source.host.name} (pass --delete-source to remove them)`);
  for (const p of plans.filter((p) => !p.shared && p.disk.readOnly)) log(`read-only disk ${source.host.name}:${p.disk.path} kept (--delete-source removes writable disks only)`);
  await deleteSourceDisks(
    source,
    own.map((p) => p.disk.path),
    log,
    journal,
  );
  await steps?.sourceDisksDeleted?.(own);
}

/**
 * Only ever after the commit point, and never by a recovery. An image file
 * goes; so does a logical volume, which the source's LVM must confirm as one
 * (not its path); any other block device is the user's to reuse, and stays.
 */
async function deleteSourceDisks(source: AgentClient, paths: string[], log: (message: string) => void, journal: StepJournal): Promise<void> {
  const host = source.host.name;
  for (const path of paths) {
    // Journaled first: a move that ends here says which disk it was removing (the target owns the VM either way).
    journal.record('source-disk-deleting', { host, path });
    const st = await source.call('file.stat', { path });
    if (st.type === 'file') {
      await source.call('file.remove', { path });
      log(`deleted source disk ${host}:${path} (--delete-source)`);
    } else if (st.type === 'block') {
      const lv = await source.call('volume.lv', { path });
      if (!lv) {
        log(`source disk ${host}:${path} kept: a block device that is not a logical volume (--delete-source removes image files and LVs)`);
        continue;
      }
      await source.call('volume.removeLv', { vg: lv.vg, lv: lv.lv });
      log(`deleted source logical volume ${host}:${lv.vg}/${lv.lv} (--delete-source)`);
    }
  }
}
