/** Loosely typed values (QMP replies, YAML, journal lines) as text for messages, objects as JSON. */
export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as number | boolean | bigint | symbol);
}
