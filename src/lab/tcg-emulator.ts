/**
 * The emulator the lab's libvirt domains run under TCG: QEMU itself, given
 * 8 KiB less RAM than libvirt asks for. QEMU before 9.0 loses TCG guest
 * stores while it migrates a RAM block that is a whole number of 256 KiB
 * (fixed upstream by "physmem: Fix migration dirty bitmap coherency with TCG
 * memory access"), and libvirt rounds a domain's RAM up to whole MiB, so
 * every lab domain would be exposed; the lab's QEMU processes get the same
 * 8 KiB less (vm.ts, labVmMemory). Both hosts run the same script, from the
 * lab's own directory, so both ends of a migration agree on the size.
 */
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { labDir } from '../hosts/inventory.js';

export const QEMU_BINARY = '/usr/bin/qemu-system-x86_64';

export function labTcgEmulatorPath(): string {
  return join(labDir(), 'qemu-system-x86_64-tcg');
}

/** The script: `-m MiB` and the pc.ram backend's size in bytes, each 8 KiB smaller; every other argument as it is. */
export function labTcgEmulatorScript(qemu = QEMU_BINARY): string {
  return `#!/bin/bash
# Written by "ferry lab up" (src/lab/tcg-emulator.ts): QEMU with 8 KiB less RAM than libvirt asks for.
args=()
prev=
for a in "$@"; do
  if [[ $prev == -m && $a =~ ^[0-9]+$ ]]; then
    a="$((a * 1024 - 8))k"
  elif [[ $a == *'"id":"pc.ram"'* && $a =~ ^(.*\\"size\\":)([0-9]+)(.*)$ ]]; then
    a="\${BASH_REMATCH[1]}$((BASH_REMATCH[2] - 8192))\${BASH_REMATCH[3]}"
  fi
  args+=("$a")
  prev=$a
done
exec ${qemu} "\${args[@]}"
`;
}

export async function writeLabTcgEmulator(): Promise<string> {
  const path = labTcgEmulatorPath();
  await fs.writeFile(path, labTcgEmulatorScript(), { mode: 0o755 });
  return path;
}
