import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReleaseFile } from './os-release.js';

test('os-release of Debian 12 and Ubuntu', () => {
  const d = parseReleaseFile(
    '/etc/os-release',
    `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`,
  )!;
  assert.deepEqual([d.id, d.name, d.version, d.family], ['debian', 'Debian GNU/Linux 12 (bookworm)', '12', 'debian']);
  const u = parseReleaseFile('/usr/lib/os-release', 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n')!;
  assert.equal(u.family, 'debian');
  const r = parseReleaseFile('/etc/os-release', 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n')!;
  assert.equal(r.family, 'redhat');
});

test('older release files', () => {
  const c = parseReleaseFile('/etc/redhat-release', 'CentOS release 5.11 (Final)\n')!;
  assert.deepEqual([c.id, c.version, c.family], ['centos', '5.11', 'redhat']);
  assert.equal(parseReleaseFile('/etc/redhat-release', 'Red Hat Enterprise Linux Server release 6.10 (Santiago)')!.version, '6.10');
  assert.equal(parseReleaseFile('/etc/SuSE-release', 'SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n')!.family, 'suse');
  assert.equal(parseReleaseFile('/etc/debian_version', '6.0.10\n')!.name, 'Debian 6.0.10');
  assert.equal(parseReleaseFile('/etc/lsb-release', 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\nDISTRIB_DESCRIPTION="Ubuntu 12.04.5 LTS"\n')!.version, '12.04');
  assert.equal(parseReleaseFile('/etc/debian_version', ''), undefined);
});
