/**
 * Whether the target can give a VM the CPU it has on the source (seed 003's
 * pitfall: a guest started with a CPU model or flags the new host lacks
 * crashes or refuses to start there). The source's `-cpu` names a model and
 * flags; the target's QEMU must know the model, and under KVM the target's
 * processor must have every flag the guest was given (all of the source
 * processor's flags for `-cpu host`). Under TCG QEMU emulates what it knows.
 */
import type { ParsedArgv } from './argv.js';

export interface GuestCpu {
  model: string;
  /** Flags turned on beyond the model's (+flag, flag=on). */
  plus: string[];
  accel: 'kvm' | 'tcg';
}

export interface CpuSupport {
  /** CPU models the QEMU knows (`-cpu help`). */
  models: string[];
  /** CPUID flags the QEMU knows. */
  flags: string[];
  /** Flags of the host's own processor (/proc/cpuinfo), as QEMU names them. */
  hostFlags: string[];
}

/** QEMU accepts sse4.2, sse4_2 and sse4-2 for one flag; /proc/cpuinfo writes the second. */
export function flagName(flag: string): string {
  return flag.toLowerCase().replace(/[._]/g, '-');
}

export function guestCpu(parsed: ParsedArgv): GuestCpu {
  const value = [...parsed.options].reverse().find((o) => o.flag === '-cpu')?.value ?? 'qemu64';
  const [model, ...props] = value.split(',');
  const plus = props.filter((p) => p.startsWith('+') || /=(on|true)$/.test(p)).map((p) => flagName(p.replace(/^\+/, '').replace(/=(on|true)$/, '')));
  const kvm = parsed.options.some((o) => o.flag === '-enable-kvm' || (o.flag === '-accel' && o.value?.startsWith('kvm')) || (o.flag === '-machine' && /accel=kvm/.test(o.value ?? '')));
  return { model: model || 'qemu64', plus, accel: kvm ? 'kvm' : 'tcg' };
}

/** Reads `qemu-system-* -cpu help`. */
export function parseCpuHelp(text: string): { models: string[]; flags: string[] } {
  const models: string[] = [];
  const flags: string[] = [];
  let inFlags = false;
  for (const line of text.split('\n')) {
    if (/^Recognized CPUID flags:/.test(line)) {
      inFlags = true;
      continue;
    }
    if (inFlags) {
      if (!line.startsWith(' ')) break;
      flags.push(...line.trim().split(/\s+/).map(flagName));
    } else {
      const m = /^\S+\s+(\S+)/.exec(line);
      if (m && !line.startsWith('Available')) models.push(m[1]!);
    }
  }
  return { models, flags };
}

/** Reads the flags of the first processor in /proc/cpuinfo. */
export function parseCpuinfoFlags(text: string): string[] {
  const line = /^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
  return line.split(/\s+/).filter(Boolean).map(flagName);
}

/** What the target lacks to run `cpu`: empty when it can. `sourceHostFlags` matter for `-cpu host` under KVM. */
export function missingOnTarget(cpu: GuestCpu, target: CpuSupport, sourceHostFlags: readonly string[]): { model?: string; flags: string[] } {
  const special = ['host', 'max'];
  const model = special.includes(cpu.model) || target.models.includes(cpu.model) ? undefined : cpu.model;
  const have = new Set(cpu.accel === 'kvm' ? target.hostFlags : target.flags);
  const wanted = cpu.accel === 'kvm' && cpu.model === 'host' ? [...sourceHostFlags, ...cpu.plus] : cpu.plus;
  const flags = [...new Set(wanted.filter((f) => !have.has(f)))];
  return { model, flags };
}
