/**
 * Files of shell variable assignments: /etc/default/grub, ifcfg-*,
 * /etc/os-release, /etc/lsb-release. Only plain assignments are understood
 * (no expansion, no commands); editing replaces a value in place and keeps
 * comments and ordering.
 */
export interface ShellVar {
  line: number;
  key: string;
  value: string;
}

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

export function parseShellVars(text: string): ShellVar[] {
  const vars: ShellVar[] = [];
  text.split('\n').forEach((raw, line) => {
    const m = ASSIGNMENT.exec(raw);
    if (!m) return;
    vars.push({ line, key: m[1]!, value: unquote(m[2]!) });
  });
  return vars;
}

/** The last assignment of each key wins, as in the shell. */
export function shellVarMap(text: string): Map<string, string> {
  return new Map(parseShellVars(text).map((v) => [v.key, v.value]));
}

function unquote(raw: string): string {
  const s = raw.trim();
  // A trailing comment after an unquoted or quoted value.
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '"') {
      const end = findClosing(s, i + 1, '"');
      out += s.slice(i + 1, end).replace(/\\(["\\$`])/g, '$1');
      i = end + 1;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      const stop = end < 0 ? s.length : end;
      out += s.slice(i + 1, stop);
      i = stop + 1;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      break;
    } else if (/\s/.test(c)) {
      break;
    } else if (c === '\\' && i + 1 < s.length) {
      out += s[i + 1];
      i += 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function findClosing(s: string, from: number, quote: string): number {
  for (let i = from; i < s.length; i++) {
    if (s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === quote) return i;
  }
  return s.length;
}

function quote(value: string): string {
  return /^[A-Za-z0-9_.,:/@%+=-]*$/.test(value) && value !== '' ? value : `"${value.replace(/(["\\$`])/g, '\\$1')}"`;
}

/**
 * Sets key to value: the last assignment is rewritten (double-quoted when the
 * old value was quoted or the new one needs it), or a line is appended.
 * value undefined comments the assignments out instead.
 */
export function setShellVar(text: string, key: string, value: string | undefined, note = 'ferry'): string {
  const vars = parseShellVars(text).filter((v) => v.key === key);
  const lines = text.split('\n');
  if (value === undefined) {
    for (const v of vars) lines[v.line] = `#${lines[v.line]}  # disabled by ${note}`;
    return lines.join('\n');
  }
  const last = vars[vars.length - 1];
  if (!last) {
    const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
    return `${body}${key}=${quote(value)}\n`;
  }
  const raw = lines[last.line]!;
  const wasQuoted = /=\s*["']/.test(raw);
  const prefix = raw.slice(0, raw.indexOf('=') + 1);
  lines[last.line] = prefix + (wasQuoted ? `"${value.replace(/(["\\$`])/g, '\\$1')}"` : quote(value));
  return lines.join('\n');
}
