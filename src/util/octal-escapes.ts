/** Decodes the octal escapes of mount tables (/etc/fstab, /proc/self/mountinfo): "\040" for a space. */
export function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
