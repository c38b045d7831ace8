/**
 * libvirt secrets (the keys network disks log in with: Ceph, iSCSI CHAP),
 * read on a move's source and defined on its target when the user asks
 * ferry to carry them (--copy-secrets). A value reaches virsh through a
 * file in a directory only root can read, removed at once: never on a
 * command line, where any user's ps would show it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryError } from '../../../util/errors.js';
import type { DiskSecret } from '../domain-xml.js';
import { parseSecretList } from '../virsh-output.js';
import type { OnConnection } from './handlers.js';
import { virsh } from './virsh.js';

export interface SecretCopy {
  uuid: string;
  /** Its definition, as secret-dumpxml gives it. */
  xml: string;
  /** Its value, base64 (as secret-get-value prints it). */
  value: string;
}

export const libvirtSecretHandlers = {
  /**
   * A secret's definition and value, found by its UUID or by its usage (as
   * a disk names it); one defined private (libvirt never gives its value
   * out) is refused.
   */
  'libvirt.secret.read': async (p: OnConnection & DiskSecret): Promise<SecretCopy> => {
    const uuid = p.uuid ?? parseSecretList((await virsh(p.uri, ['secret-list'])).stdout).find((s) => s.type === p.type && s.usage === p.usage)?.uuid;
    if (!uuid) throw new FerryError('NOT_FOUND', `No ${p.type ?? ''} secret "${p.usage ?? ''}" is defined on this host`, { hint: 'see "virsh secret-list"' });
    const { stdout: xml } = await virsh(p.uri, ['secret-dumpxml', '--secret', uuid]);
    if (/<secret\b[^>]*\bprivate=['"]yes['"]/.test(xml)) {
      throw new FerryError('SECRET_PRIVATE', `Secret ${uuid} is private: libvirt does not give its value out, so ferry cannot copy it`, {
        hint: `define it on the target by hand ("virsh secret-dumpxml ${uuid}" gives its XML; its value is wherever it was first set from), then move without --copy-secrets`,
      });
    }
    const value = (await virsh(p.uri, ['secret-get-value', '--secret', uuid])).stdout.trim();
    return { uuid, xml, value };
  },

  /** Defines a secret with its value. */
  'libvirt.secret.define': async (p: OnConnection & SecretCopy): Promise<void> => {
    // mkdtemp makes the directory 0700: only root reads the value while it is there.
    const dir = await mkdtemp(join(tmpdir(), 'ferry-secret-'));
    try {
      await writeFile(join(dir, 'secret.xml'), p.xml);
      await writeFile(join(dir, 'value'), p.value, { mode: 0o600 });
      await virsh(p.uri, ['secret-define', '--file', join(dir, 'secret.xml')]);
      await virsh(p.uri, ['secret-set-value', '--secret', p.uuid, '--file', join(dir, 'value')]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },

  'libvirt.secret.undefine': async (p: OnConnection & { uuid: string }): Promise<void> => {
    // One already gone is what was asked; a libvirtd out of reach still throws.
    await virsh(p.uri, ['secret-undefine', '--secret', p.uuid], { tolerate: ['no-domain', 'other'] });
  },
};
