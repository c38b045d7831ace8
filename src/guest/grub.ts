/**
 * Bootloader configuration: GRUB legacy menu.lst (grub.conf), GRUB 2
 * grub.cfg and /etc/default/grub. Each boot entry's kernel command line can
 * be read and rewritten in place.
 */
import { setShellVar, shellVarMap } from './shell-vars.js';

export type GrubFlavour = 'grub-legacy' | 'grub2';

export interface BootEntry {
  title: string;
  /** Line of the kernel (legacy) or linux (GRUB 2) command. */
  line: number;
  kernel: string;
  initrd?: string;
  cmdline: string;
}

// legacy: "kernel /vmlinuz-x ro root=..."; also "module /vmlinuz..." under Xen's "kernel /xen.gz".
const LEGACY_KERNEL = /^(\s*(?:kernel|module)\s+)(\S+)(.*)$/;
const GRUB2_LINUX = /^(\s*(?:linux|linux16|linuxefi)\s+)(\S+)(.*)$/;

export function parseBootEntries(text: string, flavour: GrubFlavour): BootEntry[] {
  const entries: BootEntry[] = [];
  let title = '';
  let current: BootEntry | undefined;
  text.split('\n').forEach((raw, line) => {
    const trimmed = raw.trim();
    if (flavour === 'grub-legacy' && /^title\s/.test(trimmed)) {
      title = trimmed.replace(/^title\s+/, '');
      current = undefined;
      return;
    }
    if (flavour === 'grub2' && /^(menuentry|submenu)\s/.test(trimmed)) {
      title = /^(?:menuentry|submenu)\s+(['"])(.*?)\1/.exec(trimmed)?.[2] ?? trimmed;
      current = undefined;
      return;
    }
    const m = (flavour === 'grub-legacy' ? LEGACY_KERNEL : GRUB2_LINUX).exec(raw);
    const isHypervisor = m !== null && /(^|\/)xen[^/]*\.gz$/.test(m[2]!);
    const isModule = /^\s*module\s/.test(raw);
    if (m && !isHypervisor && !(isModule && current)) {
      current = { title, line, kernel: m[2]!, cmdline: m[3]!.trim() };
      entries.push(current);
      return;
    }
    const initrd = /^\s*(?:initrd|initrd16|initrdefi|module)\s+(\S+)/.exec(raw);
    if (initrd && current && !current.initrd) current.initrd = initrd[1];
  });
  return entries;
}

/** Rewrites each entry's command line with `edit`; returns the new text. */
export function rewriteBootCmdlines(text: string, flavour: GrubFlavour, edit: (cmdline: string, entry: BootEntry) => string): string {
  const lines = text.split('\n');
  for (const e of parseBootEntries(text, flavour)) {
    const next = edit(e.cmdline, e);
    if (next === e.cmdline) continue;
    const m = (flavour === 'grub-legacy' ? LEGACY_KERNEL : GRUB2_LINUX).exec(lines[e.line]!)!;
    lines[e.line] = `${m[1]}${m[2]} ${next}`.replace(/\s+$/, '');
  }
  return lines.join('\n');
}

/** Console-related lines of a GRUB config: serial/terminal commands (legacy) or GRUB_TERMINAL (GRUB 2). */
export function grubTerminalLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(serial|terminal|terminal_input|terminal_output)\b/.test(l));
}

/** The settings of /etc/default/grub ferry reads and edits. */
export interface DefaultGrub {
  cmdlineLinux: string;
  cmdlineLinuxDefault: string;
  disableLinuxUuid: boolean;
  terminal?: string;
  serialCommand?: string;
}

export function parseDefaultGrub(text: string): DefaultGrub {
  const v = shellVarMap(text);
  return {
    cmdlineLinux: v.get('GRUB_CMDLINE_LINUX') ?? '',
    cmdlineLinuxDefault: v.get('GRUB_CMDLINE_LINUX_DEFAULT') ?? '',
    disableLinuxUuid: v.get('GRUB_DISABLE_LINUX_UUID') === 'true',
    terminal: v.get('GRUB_TERMINAL') ?? v.get('GRUB_TERMINAL_OUTPUT'),
    serialCommand: v.get('GRUB_SERIAL_COMMAND'),
  };
}

/** Rewrites both command line variables of /etc/default/grub with `edit`. */
export function rewriteDefaultGrubCmdlines(text: string, edit: (cmdline: string) => string, keys = ['GRUB_CMDLINE_LINUX', 'GRUB_CMDLINE_LINUX_DEFAULT']): string {
  let out = text;
  const v = shellVarMap(text);
  for (const key of keys) {
    const old = v.get(key);
    if (old === undefined) continue;
    const next = edit(old);
    if (next !== old) out = setShellVar(out, key, next);
  }
  return out;
}
