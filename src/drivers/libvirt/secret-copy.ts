/**
 * Carrying a domain's libvirt secrets to the target (--copy-secrets): each
 * read on the source and defined on the target before the domain is, its
 * UUID claimed in the journal first so that whoever settles a failed move
 * (the run itself, or `ferry recover`) undefines it again. The value never
 * reaches the journal or the log.
 */
import type { AgentClient } from '../../hosts/agent-client.js';
import { messageOf } from '../../util/errors.js';
import type { StepJournal } from '../driver.js';
import type { DiskSecret } from './domain-xml.js';

/**
 * Defines each of `secrets` on the target as on the source, adding each
 * UUID to `claimed` before its definition: a copy that fails half-way
 * leaves there nothing its settling would not find.
 */
export async function copySecrets(source: AgentClient, target: AgentClient, secrets: readonly DiskSecret[], claimed: string[], journal: StepJournal, log: (message: string) => void): Promise<void> {
  for (const secret of secrets) {
    const copy = await source.call('libvirt.secret.read', secret);
    journal.record('secret-claimed', { host: target.host.name, uuid: copy.uuid });
    claimed.push(copy.uuid);
    await target.call('libvirt.secret.define', copy);
    log(`defined secret ${copy.uuid} on ${target.host.name} as on ${source.host.name} (--copy-secrets)`);
  }
}

/** The UUIDs of the secrets a move defined on its target, from its journal. */
export function claimedSecrets(journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): string[] {
  return journal.filter((e) => e.step === 'secret-claimed' && typeof e.uuid === 'string').map((e) => e.uuid as string);
}

/** Undefines the secrets a failed move defined on the target: the domain that needed them is not there. */
export async function removeSecrets(target: AgentClient, uuids: readonly string[], log: (message: string) => void): Promise<void> {
  for (const uuid of uuids) {
    await target
      .call('libvirt.secret.undefine', { uuid })
      .then(() => log(`undefined secret ${uuid} on ${target.host.name}, which this move had defined`))
      .catch((e: unknown) => log(`could not undefine secret ${uuid} on ${target.host.name}: ${messageOf(e)}`));
  }
}
