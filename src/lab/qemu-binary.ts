/**
 * A lab host's QEMU as another machine's may be: one that lacks CPU models
 * or CPUID flags this machine's QEMU has (an older QEMU, or one built for
 * other processors). In the host's mount namespace only, QEMU's binary is
 * covered by a script that answers `-cpu help` without them and runs the
 * real QEMU, under its own name, for anything else.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { runInside, type LabHostEntry } from './inside.js';

export interface LabQemuChange {
  withoutCpuModels?: readonly string[];
  withoutCpuFlags?: readonly string[];
}

export const LAB_QEMU_BINARY = '/usr/bin/qemu-system-x86_64';

/** Gives lab host `host` a QEMU changed as `change` says, or its own again when `change` asks nothing. */
export async function changeLabHostQemu(host: LabHostEntry, change: LabQemuChange = {}): Promise<void> {
  const real = join(host.root, 'qemu-system-x86_64.real');
  const wrapper = join(host.root, 'qemu-system-x86_64.lab');
  // Whatever an earlier change covered comes back first.
  await runInside(host, ['umount', LAB_QEMU_BINARY], { allowFailure: true });
  await runInside(host, ['umount', real], { allowFailure: true });
  if (!change.withoutCpuModels?.length && !change.withoutCpuFlags?.length) return;
  await fs.writeFile(real, '');
  await runInside(host, ['mount', '--bind', LAB_QEMU_BINARY, real]);
  await fs.writeFile(wrapper, labQemuWrapper(real, change), { mode: 0o755 });
  await runInside(host, ['mount', '--bind', wrapper, LAB_QEMU_BINARY]);
}

/** The script that stands in for QEMU: `-cpu help` without the models and flags named; the real QEMU otherwise. */
export function labQemuWrapper(real: string, change: LabQemuChange): string {
  const words = (xs: readonly string[] | undefined): string => (xs ?? []).join(' ');
  return [
    '#!/bin/bash',
    "# Written by ferry's lab: this host's QEMU as one without some CPU models and flags.",
    'if [ "$#" -eq 2 ] && [ "$1" = -cpu ] && [ "$2" = help ]; then',
    `  "${real}" -cpu help | awk -v models='${words(change.withoutCpuModels)}' -v flags='${words(change.withoutCpuFlags)}' '`,
    '    BEGIN { split(models, m, " "); for (i in m) M[m[i]] = 1; split(flags, f, " "); for (i in f) F[f[i]] = 1 }',
    '    /^Recognized CPUID flags:/ { inflags = 1; print; next }',
    '    inflags && /^ / { out = " "; for (i = 1; i <= NF; i++) if (!($i in F)) out = out " " $i; print out; next }',
    '    !inflags && ($2 in M) { next }',
    "    { print }'",
    '  exit "${PIPESTATUS[0]}"',
    'fi',
    `exec -a "$0" "${real}" "$@"`,
    '',
  ].join('\n');
}
