/**
 * Kernel command lines as GRUB files hold them: space-separated parameters,
 * some `key=value`. Editing keeps parameter order; values with spaces are not
 * used on kernel command lines in practice and are not supported.
 */
export function cmdlineParams(cmdline: string): string[] {
  return cmdline
    .trim()
    .split(/\s+/)
    .filter((p) => p !== '');
}

/** Every value of `key` (console= may appear several times). */
export function paramValues(cmdline: string, key: string): string[] {
  return cmdlineParams(cmdline)
    .filter((p) => p.startsWith(`${key}=`))
    .map((p) => p.slice(key.length + 1));
}

export function paramValue(cmdline: string, key: string): string | undefined {
  const v = paramValues(cmdline, key);
  return v[v.length - 1];
}

/**
 * Applies `edit` to every parameter; it returns the replacement (a string),
 * null to drop it, or undefined to keep it. Whitespace between kept
 * parameters is preserved.
 */
export function editParams(cmdline: string, edit: (param: string) => string | null | undefined): string {
  // Pairs of (whitespace before, parameter); a dropped parameter takes its leading whitespace along.
  const re = /(\s*)(\S+)/g;
  let out = '';
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(cmdline)) !== null) {
    last = m.index + m[0].length;
    const r = edit(m[2]!);
    if (r === null) continue;
    out += (out === '' && m[1] !== '' && m.index !== 0 ? '' : m[1]) + (r ?? m[2]);
  }
  return out.replace(/^\s+/, (w) => (cmdline.startsWith(w) ? w : '')) + cmdline.slice(last);
}

/** Sets `key=value` (replacing the last occurrence, dropping others), or appends it. */
export function setParam(cmdline: string, key: string, value: string | undefined): string {
  const want = value === undefined ? key : `${key}=${value}`;
  const matches = (p: string): boolean => p === key || p.startsWith(`${key}=`);
  const count = cmdlineParams(cmdline).filter(matches).length;
  if (count === 0) return cmdline.trim() === '' ? want : `${cmdline.replace(/\s+$/, '')} ${want}`;
  let seen = 0;
  return editParams(cmdline, (p) => {
    if (!matches(p)) return undefined;
    seen++;
    return seen === count ? want : null;
  });
}
