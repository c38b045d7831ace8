/**
 * Whitespace-separated tables (/etc/fstab, /etc/crypttab): lines of fields,
 * '#' comments. Editing replaces one field in place so the rest of the line,
 * its alignment and every comment stay as the administrator wrote them.
 */
export interface TableLine {
  /** 0-based line number in the file. */
  line: number;
  fields: string[];
}

export function parseTable(text: string): TableLine[] {
  const rows: TableLine[] = [];
  text.split('\n').forEach((raw, line) => {
    const body = raw.trim();
    if (body === '' || body.startsWith('#')) return;
    rows.push({ line, fields: body.split(/\s+/) });
  });
  return rows;
}

/** Replaces field `index` of line `line` with `value`, keeping the spacing around it. */
export function replaceField(text: string, line: number, index: number, value: string): string {
  const lines = text.split('\n');
  const raw = lines[line];
  if (raw === undefined) throw new RangeError(`No line ${line}`);
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(raw)) !== null) {
    if (i === index) {
      lines[line] = raw.slice(0, m.index) + value + raw.slice(m.index + m[0].length);
      return lines.join('\n');
    }
    i++;
  }
  throw new RangeError(`Line ${line} has no field ${index}`);
}
