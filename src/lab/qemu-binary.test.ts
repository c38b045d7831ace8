import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCpuHelp } from '../drivers/qemu/cpu.js';
import { labQemuWrapper } from './qemu-binary.js';

const HELP = [
  'Available CPUs:',
  'x86 Haswell               (alias configured by machine type)',
  'x86 qemu64                QEMU Virtual CPU version 2.5+',
  'x86 qemu64-v1',
  '',
  'Recognized CPUID flags:',
  '  3dnow avx2 sse3',
  '  ssse3 x2apic',
  '',
].join('\n');

test("the lab's stand-in QEMU answers -cpu help without the models and flags named, and runs the real QEMU for the rest", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-lab-qemu-'));
  try {
    // The "real QEMU": prints the help for -cpu help, else its arguments.
    const real = join(dir, 'real');
    writeFileSync(real, `#!/bin/bash\nif [ "$1" = -cpu ]; then printf '%s' '${HELP}'; exit 0; fi\necho "$0" "$@"\n`, { mode: 0o755 });
    const wrapper = join(dir, 'qemu-system-x86_64');
    writeFileSync(wrapper, labQemuWrapper(real, { withoutCpuModels: ['qemu64'], withoutCpuFlags: ['ssse3', 'avx2'] }), { mode: 0o755 });

    const help = parseCpuHelp(execFileSync(wrapper, ['-cpu', 'help'], { encoding: 'utf8' }));
    assert.deepEqual(help.models, ['Haswell', 'qemu64-v1']);
    assert.deepEqual(help.flags, ['3dnow', 'sse3', 'x2apic']);

    // (A script's $0 is its own path: the name QEMU runs under shows only with the real binary.)
    assert.equal(execFileSync(wrapper, ['-machine', 'pc', '-cpu', 'qemu64'], { encoding: 'utf8' }).trim(), `${real} -machine pc -cpu qemu64`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
