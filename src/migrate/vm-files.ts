/**
 * The files a VM keeps beside its disks that are its own, not its host's:
 * a UEFI domain's variable store (its boot entries, its Secure Boot keys),
 * an emulated TPM's state (the keys a guest sealed with it). Each is carried
 * to the same path on the target, through the sync engine and verified,
 * like a disk: without it the VM would boot on a blank store or a new TPM.
 * A live move copies the variable store too, as a start: the target's QEMU
 * writes the flash it received back into the file when the guest resumes;
 * the TPM's state crosses in QEMU's own stream (`carriedLive`).
 */
import type { StepContext, StepJournal, VmInfo, VmOwnFile } from '../drivers/driver.js';
import type { AgentClient } from '../hosts/agent-client.js';
import { verifyError } from '../transfer/sync-summary.js';
import { syncDisks } from '../transfer/sync-controller.js';
import { FerryError } from '../util/errors.js';
import { compareDisks } from './same-disk.js';

export interface VmFilePlan extends VmOwnFile {
  sizeBytes: number;
  /** The source's permission bits, kept: a variable store may hold secrets (an iSCSI boot's CHAP key), and libvirt makes it 0600. */
  mode?: number;
  /** The target holds the same bytes already (a move back, a copy made by hand): used as it is, neither copied nor claimed. */
  present?: boolean;
  /** An interrupted move of this VM made it: the copy continues into it. */
  resume?: boolean;
  /** Other bytes lie at its path on the target, and --force has them replaced. */
  overwrite?: boolean;
}

/**
 * What becomes of each of the VM's own files (in a `live` move, of those its
 * stream does not carry). One the source does not have (a domain never
 * started: the hypervisor makes it at the first start) has nothing to
 * carry. One at the path on the target already must hold the same bytes,
 * unless `force` has ferry overwrite it.
 */
export async function planVmFiles(
  vm: Pick<VmInfo, 'name' | 'ownFiles'>,
  source: AgentClient,
  target: AgentClient,
  options: { force?: boolean; resumable?: ReadonlySet<string>; log: (message: string) => void; live?: boolean },
): Promise<VmFilePlan[]> {
  const plans: VmFilePlan[] = [];
  for (const file of vm.ownFiles ?? []) {
    // The hypervisor carries it in a live move, and makes it anew on the target.
    if (options.live && file.carriedLive) continue;
    const [here, there] = await Promise.all([source.call('file.stat', { path: file.path }), target.call('file.stat', { path: file.path })]);
    if (!here.exists) {
      options.log(`${file.what} ${file.path} is not on ${source.host.name} yet: the hypervisor makes it at the VM's first start`);
      continue;
    }
    const plan: VmFilePlan = { ...file, sizeBytes: here.size ?? 0, mode: here.mode };
    if (there.exists && there.type !== 'file') {
      throw new FerryError('TARGET_EXISTS', `The ${file.what} of VM "${vm.name}" goes to "${file.path}" on "${target.host.name}", which is a ${there.type} there`, {
        hint: 'move or remove what is at that path on the target',
      });
    }
    if (there.exists && options.resumable?.has(file.path)) plan.resume = true;
    else if (there.exists) {
      const same = await compareDisks(file.path, file.path, source, target);
      if (same.same) {
        options.log(`${target.host.name}:${file.path} holds the same bytes as the ${file.what} of ${vm.name}: used as it is`);
        plan.present = true;
      } else if (options.force) {
        plan.overwrite = true;
      } else if (await isBlank(file, same.targetSha256, target)) {
        // What libvirt leaves after a migration that failed on the target (it makes the store from the template first).
        options.log(`${target.host.name}:${file.path} is a blank ${file.what}, a copy of ${file.template}: replaced with the one of ${vm.name}`);
        plan.overwrite = true;
      } else {
        throw new FerryError('TARGET_EXISTS', `"${file.path}" on "${target.host.name}", where the ${file.what} of VM "${vm.name}" goes, holds other bytes than on "${source.host.name}"`, {
          hint: `ferry does not overwrite it (another VM's, or one an earlier move left): remove it from ${target.host.name}, or pass --force to overwrite it`,
        });
      }
    }
    plans.push(plan);
  }
  return plans;
}

/** Whether the target's file (of SHA-256 `sha256`) is a copy of the template it is made from there, holding nothing of any VM. */
async function isBlank(file: VmOwnFile, sha256: string | undefined, target: AgentClient): Promise<boolean> {
  if (!file.template || !sha256) return false;
  const template = await target.call('file.stat', { path: file.template });
  return template.exists && template.type === 'file' && (await target.call('file.sha256', { path: file.template })).sha256 === sha256;
}

/**
 * Copies each planned file that the target lacks, claiming it first (so that
 * whoever settles a failed move removes it) and verifying it; returns the
 * bytes sent.
 */
export async function carryVmFiles(
  plans: readonly VmFilePlan[],
  context: Pick<StepContext, 'source' | 'target' | 'journal'>,
  claim: (path: string) => Promise<void>,
  log: (message: string) => void,
): Promise<number> {
  const { source, target, journal } = context;
  let sent = 0;
  for (const p of plans) {
    if (p.present) continue;
    if (!p.resume) {
      await claim(p.path);
      if (p.overwrite) await target.call('file.remove', { path: p.path });
      await target.call('image.create', { path: p.path, format: 'raw', sizeBytes: p.sizeBytes, mode: p.mode });
    }
    journal.record('vm-file-copying', { what: p.what, path: p.path, host: target.host.name });
    const summary = await syncDisks(
      { client: source, path: p.path, label: `${source.host.name}:${p.path}` },
      { client: target, path: p.path, label: `${target.host.name}:${p.path}` },
      { verify: true, resume: p.resume },
    );
    if (summary.status === 'verify-failed') throw verifyError(summary);
    journal.record('vm-file-copied', { path: p.path, bytes_sent: summary.bytes_sent });
    log(`copied the ${p.what} ${p.path} to ${target.host.name} (${summary.bytes_total} bytes, verified)`);
    sent += summary.bytes_sent;
  }
  return sent;
}

/**
 * The claim of a move that keeps what it made when it fails (cold, warm
 * --reboot): the journal's `created` line, from which a rerun continues
 * into the file as into the images.
 */
export function keptForRerun(context: Pick<StepContext, 'target' | 'journal'>): (path: string) => Promise<void> {
  return async (path) => context.journal.record('created', { host: context.target.host.name, path, format: 'raw' });
}

/**
 * After the commit point only, with --delete-source: the source's copies go,
 * as its disks do. A definition the source keeps (--keep-source-definition)
 * still names them: they stay with it.
 */
export async function keepOrDeleteSourceVmFiles(
  source: AgentClient,
  plans: readonly VmFilePlan[],
  settings: { deleteSource?: boolean; keepSourceDefinition?: boolean },
  log: (message: string) => void,
  journal: StepJournal,
): Promise<void> {
  if (!plans.length || !settings.deleteSource) return;
  for (const p of plans) {
    if (settings.keepSourceDefinition) {
      log(`${p.what} ${source.host.name}:${p.path} kept: the definition kept there uses it`);
      continue;
    }
    journal.record('source-file-deleting', { host: source.host.name, path: p.ownDir ?? p.path });
    if (p.ownDir) await source.call('file.removeTree', { path: p.ownDir });
    else await source.call('file.remove', { path: p.path });
    log(`deleted the source's ${p.what} ${source.host.name}:${p.ownDir ?? p.path} (--delete-source)`);
  }
}

/** The report's line for each: where it went, and whether the target had it already. */
export function reportVmFiles(plans: readonly VmFilePlan[]): Array<{ what: string; path: string; present?: true }> {
  return plans.map((p) => ({ what: p.what, path: p.path, ...(p.present ? { present: true as const } : {}) }));
}
