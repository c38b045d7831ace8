/** The guest's distribution from /etc/os-release, or older release files. */
import { shellVarMap } from './shell-vars.js';

export interface OsInfo {
  id: string;
  name: string;
  version?: string;
  /** The file it was read from. */
  source: string;
  /** Distribution family, which decides how the initramfs is rebuilt. */
  family: 'debian' | 'redhat' | 'suse' | 'arch' | 'alpine' | 'other';
}

/** Files to try, most authoritative first. */
export const RELEASE_FILES = [
  '/etc/os-release',
  '/usr/lib/os-release',
  '/etc/redhat-release',
  '/etc/centos-release',
  '/etc/SuSE-release',
  '/etc/lsb-release',
  '/etc/debian_version',
  '/etc/alpine-release',
] as const;

export function familyOf(id: string, idLike = ''): OsInfo['family'] {
  const ids = `${id} ${idLike}`.toLowerCase().split(/\s+/);
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'debian';
  if (ids.some((i) => ['rhel', 'fedora', 'centos', 'redhat', 'rocky', 'almalinux', 'ol'].includes(i))) return 'redhat';
  if (ids.some((i) => ['suse', 'sles', 'opensuse'].includes(i) || i.startsWith('opensuse'))) return 'suse';
  if (ids.includes('arch')) return 'arch';
  if (ids.includes('alpine')) return 'alpine';
  return 'other';
}

/** Parses one release file; undefined when it says nothing usable. */
export function parseReleaseFile(path: string, text: string): OsInfo | undefined {
  const base = path.replace(/^.*\//, '');
  if (base === 'os-release') {
    const v = shellVarMap(text);
    const id = v.get('ID') ?? 'linux';
    return { id, name: v.get('PRETTY_NAME') ?? v.get('NAME') ?? id, version: v.get('VERSION_ID'), source: path, family: familyOf(id, v.get('ID_LIKE')) };
  }
  if (base === 'lsb-release') {
    const v = shellVarMap(text);
    const id = (v.get('DISTRIB_ID') ?? '').toLowerCase();
    if (!id) return undefined;
    return { id, name: v.get('DISTRIB_DESCRIPTION') ?? id, version: v.get('DISTRIB_RELEASE'), source: path, family: familyOf(id) };
  }
  const line = text.split('\n')[0]!.trim();
  if (!line) return undefined;
  if (base === 'debian_version') return { id: 'debian', name: `Debian ${line}`, version: line, source: path, family: 'debian' };
  if (base === 'alpine-release') return { id: 'alpine', name: `Alpine Linux ${line}`, version: line, source: path, family: 'alpine' };
  // "CentOS release 5.11 (Final)", "Red Hat Enterprise Linux Server release 6.10 (Santiago)", "SUSE Linux Enterprise Server 11 (x86_64)"
  const version = /release\s+([\d.]+)/.exec(line)?.[1] ?? /\b(\d+(?:\.\d+)?)\b/.exec(line)?.[1];
  if (base === 'SuSE-release') return { id: 'suse', name: line, version, source: path, family: 'suse' };
  const id = /centos/i.test(line) ? 'centos' : /fedora/i.test(line) ? 'fedora' : 'rhel';
  return { id, name: line, version, source: path, family: 'redhat' };
}
