/**
 * Which accelerator works on a host. /dev/kvm existing is not proof (nested
 * KVM may hang guests or abort QEMU), so a tiny guest is booted under KVM
 * once and the answer cached until the next boot.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { run } from '../../util/exec.js';

const CACHE = '/run/ferry-accel.json';

interface AccelProbe {
  bootId: string;
  accel: 'kvm' | 'tcg';
}

function isAccelProbe(v: unknown): v is AccelProbe {
  return typeof v === 'object' && v !== null && 'bootId' in v && typeof v.bootId === 'string' && 'accel' in v && (v.accel === 'kvm' || v.accel === 'tcg');
}

export async function detectAccel(kernel: string): Promise<'kvm' | 'tcg'> {
  const forced = process.env.FERRY_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (!existsSync('/dev/kvm')) return 'tcg';
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  try {
    const cached: unknown = JSON.parse(readFileSync(CACHE, 'utf8'));
    if (isAccelProbe(cached) && cached.bootId === bootId) return cached.accel;
  } catch {
    // not probed yet this boot
  }
  // Without an initrd the kernel panics at once on a working KVM; -no-reboot makes QEMU exit.
  const r = await run(
    'timeout',
    [
      '-s',
      'KILL',
      '10',
      'qemu-system-x86_64',
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-m',
      '128',
      '-nodefaults',
      '-display',
      'none',
      '-no-reboot',
      '-serial',
      'stdio',
      '-kernel',
      kernel,
      '-append',
      'console=ttyS0 panic=-1',
    ],
    { allowFailure: true },
  );
  const accel = /Kernel panic|VFS:/.test(r.stdout) ? 'kvm' : 'tcg';
  try {
    mkdirSync('/run', { recursive: true });
    writeFileSync(CACHE, JSON.stringify({ bootId, accel } satisfies AccelProbe));
  } catch {
    // caching is an optimisation
  }
  return accel;
}
