import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQemuArgv } from './argv.js';
import { guestCpu, missingOnTarget, parseCpuHelp, parseCpuinfoFlags } from './cpu.js';

const HELP = `Available CPUs:
x86 486                   (alias configured by machine type)
x86 Skylake-Server-v1     Intel Xeon Processor (Skylake)
x86 qemu64                (alias configured by machine type)
x86 qemu64-v1             QEMU Virtual CPU version 2.5+

Recognized CPUID flags:
  3dnow abm aes avx avx2
  sse4.1 sse4.2 x2apic
`;

test('-cpu help gives the models and the flags, with one spelling per flag', () => {
  const { models, flags } = parseCpuHelp(HELP);
  assert.deepEqual(models, ['486', 'Skylake-Server-v1', 'qemu64', 'qemu64-v1']);
  assert.ok(flags.includes('sse4-2') && flags.includes('avx2') && flags.includes('x2apic'));
});

test('the guest CPU: model, flags turned on, accelerator', () => {
  const tcg = guestCpu(parseQemuArgv(['qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'Skylake-Server-v1,+avx512f,x2apic=on,-pcid']));
  assert.deepEqual(tcg, { model: 'Skylake-Server-v1', plus: ['avx512f', 'x2apic'], accel: 'tcg' });
  assert.equal(guestCpu(parseQemuArgv(['qemu-system-x86_64', '-enable-kvm', '-cpu', 'host'])).accel, 'kvm');
  assert.equal(guestCpu(parseQemuArgv(['qemu-system-x86_64'])).model, 'qemu64');
});

test('a model or flag the target lacks is named; under KVM, -cpu host needs every flag of the source processor', () => {
  const target = { ...parseCpuHelp(HELP), hostFlags: parseCpuinfoFlags('processor\t: 0\nflags\t\t: fpu sse4_2 avx\n') };
  assert.deepEqual(missingOnTarget({ model: 'Icelake-Server', plus: [], accel: 'tcg' }, target, []), { model: 'Icelake-Server', flags: [] });
  assert.deepEqual(missingOnTarget({ model: 'qemu64', plus: ['avx512f', 'aes'], accel: 'tcg' }, target, []), { model: undefined, flags: ['avx512f'] });
  assert.deepEqual(missingOnTarget({ model: 'host', plus: [], accel: 'kvm' }, target, ['fpu', 'sse4-2', 'avx2']), { model: undefined, flags: ['avx2'] });
  assert.deepEqual(missingOnTarget({ model: 'qemu64', plus: [], accel: 'tcg' }, target, []), { model: undefined, flags: [] });
});
