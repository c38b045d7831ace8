/**
 * QEMU command lines: parse a running VM's argv (from /proc/PID/cmdline),
 * read what ferry needs from it, and derive the incoming target's argv.
 */

/** Options that take no value; every other option takes exactly one. */
const FLAG_OPTIONS = new Set([
  '-S',
  '-daemonize',
  '-nodefaults',
  '-nographic',
  '-no-reboot',
  '-no-shutdown',
  '-enable-kvm',
  '-no-user-config',
  '-snapshot',
  '-no-hpet',
  '-no-acpi',
  '-full-screen',
  '-usb',
  '-s',
  '-version',
  '-help',
  '-h',
  '-no-fd-bootchk',
  '-alt-grab',
  '-ctrl-grab',
  '-no-quit',
  '-only-migratable',
  '-enable-fips',
]);

export interface QemuOption {
  /** The option with its leading dash, normalised to one dash: "-drive". */
  flag: string;
  value?: string;
}

export interface ParsedArgv {
  binary: string;
  options: QemuOption[];
  name?: string;
  qmpSocket?: string;
}

/**
 * QEMU's own log (-D), which a daemonized QEMU with logging on (-d) also
 * takes as its stderr: an assertion or abort that ended it is written there.
 */
export function qemuLogFile(parsed: ParsedArgv): string | undefined {
  return [...parsed.options].reverse().find((o) => o.flag === '-D')?.value;
}

export function splitOptions(argv: readonly string[]): QemuOption[] {
  const options: QemuOption[] = [];
  for (let i = 1; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith('-')) {
      options.push({ flag: '', value: raw }); // a bare disk image: legacy "qemu disk.img"
      continue;
    }
    const flag = raw.startsWith('--') ? raw.slice(1) : raw;
    if (FLAG_OPTIONS.has(flag) || i + 1 >= argv.length) options.push({ flag });
    else options.push({ flag, value: argv[++i] });
  }
  return options;
}

/** Parses QEMU's "key=value,key=value" syntax (",," escapes a comma); a leading bare word gets `impliedKey`. */
export function parseKeyval(value: string, impliedKey?: string): Map<string, string> {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === ',') {
      if (value[i + 1] === ',') {
        cur += ',';
        i++;
        continue;
      }
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const map = new Map<string, string>();
  parts.forEach((p, idx) => {
    const eq = p.indexOf('=');
    if (eq < 0) {
      if (idx === 0 && impliedKey) map.set(impliedKey, p);
      else map.set(p, 'on');
    } else map.set(p.slice(0, eq), p.slice(eq + 1));
  });
  return map;
}

export function formatKeyval(map: Map<string, string>, impliedKey?: string): string {
  const esc = (s: string): string => s.replace(/,/g, ',,');
  return [...map.entries()].map(([k, v], idx) => (idx === 0 && k === impliedKey ? esc(v) : `${k}=${esc(v)}`)).join(',');
}

export function parseQemuArgv(argv: readonly string[]): ParsedArgv {
  const options = splitOptions(argv);
  const parsed: ParsedArgv = { binary: argv[0] ?? 'qemu-system-x86_64', options };
  const chardevPaths = new Map<string, string>();
  for (const option of options) {
    if (option.flag === '-chardev' && option.value) {
      const kv = parseKeyval(option.value, 'backend');
      if (kv.get('backend') === 'socket' && kv.has('path') && kv.has('id')) chardevPaths.set(kv.get('id')!, kv.get('path')!);
    }
  }
  for (const option of options) {
    if (!option.value) continue;
    if (option.flag === '-name') parsed.name = parseKeyval(option.value, 'guest').get('guest');
    if (option.flag === '-qmp' && !parsed.qmpSocket) {
      const m = /^unix:([^,]+)/.exec(option.value);
      if (m) parsed.qmpSocket = m[1];
    }
    if (option.flag === '-mon' && !parsed.qmpSocket) {
      const kv = parseKeyval(option.value, 'chardev');
      if (kv.get('mode') === 'control' && chardevPaths.has(kv.get('chardev') ?? '')) parsed.qmpSocket = chardevPaths.get(kv.get('chardev')!);
    }
  }
  return parsed;
}

export function joinOptions(binary: string, options: readonly QemuOption[]): string[] {
  const argv = [binary];
  for (const option of options) {
    if (option.flag) argv.push(option.flag);
    if (option.value !== undefined) argv.push(option.value);
  }
  return argv;
}

export interface TargetArgvOptions {
  /** Source disk path -> target disk path, for disks that move to another path. */
  diskPaths: Map<string, string>;
  /** Source disk path -> format of the target image (a block device target is raw). */
  diskFormats?: Map<string, string>;
  accel?: string;
  /** false: a VM that boots (a cold move) rather than one that waits for a migration. */
  incoming?: boolean;
}

/**
 * The incoming target's argv: the same devices, disks at their target paths,
 * waiting for `migrate-incoming` (-incoming defer). The target resumes by
 * itself when the migration completes, which keeps the pause short.
 */
export function targetArgv(source: ParsedArgv, opts: TargetArgvOptions): string[] {
  const out: QemuOption[] = [];
  for (const option of source.options) {
    if (['-daemonize', '-pidfile', '-incoming', '-S', '-loadvm'].includes(option.flag)) continue;
    if ((option.flag === '-drive' || option.flag === '-blockdev') && option.value && !option.value.startsWith('{')) {
      const key = option.flag === '-drive' ? 'file' : 'filename';
      const kv = parseKeyval(option.value);
      const path = kv.get(key);
      if (path && opts.diskPaths.has(path)) {
        kv.set(key, opts.diskPaths.get(path)!);
        const fmt = opts.diskFormats?.get(path);
        if (fmt && option.flag === '-drive') kv.set('format', fmt);
      }
      out.push({ flag: option.flag, value: formatKeyval(kv) });
      continue;
    }
    if (option.flag === '-accel' && opts.accel) {
      out.push({ flag: option.flag, value: opts.accel });
      continue;
    }
    out.push(option);
  }
  if (opts.incoming !== false) out.push({ flag: '-incoming', value: 'defer' });
  return joinOptions(source.binary, out);
}

/** Paths QEMU itself creates when it starts with this command line. */
export function filesQemuCreates(parsed: ParsedArgv): string[] {
  const files = new Set<string>();
  if (parsed.qmpSocket) files.add(parsed.qmpSocket);
  for (const o of parsed.options) {
    if (!o.value) continue;
    if (o.flag === '-chardev') {
      const kv = parseKeyval(o.value, 'backend');
      if (['file', 'socket', 'pipe'].includes(kv.get('backend') ?? '') && kv.get('path')) files.add(kv.get('path')!);
    }
    if (o.flag === '-serial' && o.value.startsWith('file:')) files.add(o.value.slice(5));
    if (o.flag === '-D') files.add(o.value);
  }
  return [...files];
}

/** The accelerator the VM runs under: kvm, tcg (QEMU's default without one), or another named one. */
export function accelOf(parsed: ParsedArgv): string {
  let accel = 'tcg';
  for (const o of parsed.options) {
    if (o.flag === '-enable-kvm') accel = 'kvm';
    if (o.flag === '-accel' && o.value) accel = o.value.split(',')[0]!.replace(/^accel=/, '');
    const m = o.flag === '-machine' || o.flag === '-M' ? /(?:^|,)accel=([^,:]+)/.exec(o.value ?? '') : null;
    if (m) accel = m[1]!;
  }
  return accel;
}
