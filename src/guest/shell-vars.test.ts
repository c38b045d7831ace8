import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseShellVars, setShellVar, shellVarMap } from './shell-vars.js';

const IFCFG = `# Xen virtual ethernet
DEVICE=eth0
BOOTPROTO=static
HWADDR=00:16:3E:5E:1F:01
IPADDR=192.168.10.21
NETMASK=255.255.255.0
ONBOOT=yes
NAME="System eth0"
`;

test('reads quoted, unquoted and commented assignments', () => {
  const m = shellVarMap(`A=1\nB="two words" # note\nC='single $x'\nexport D=4\n#E=5\nF=\nG=a\\ b\n`);
  assert.deepEqual(
    [...m],
    [
      ['A', '1'],
      ['B', 'two words'],
      ['C', 'single $x'],
      ['D', '4'],
      ['F', ''],
      ['G', 'a b'],
    ],
  );
  assert.equal(shellVarMap(IFCFG).get('NAME'), 'System eth0');
  assert.equal(parseShellVars(IFCFG).length, 7);
});

test('setting a value keeps the rest of the file', () => {
  const out = setShellVar(IFCFG, 'HWADDR', '52:54:00:12:34:56');
  assert.equal(out, IFCFG.replace('00:16:3E:5E:1F:01', '52:54:00:12:34:56'));
  assert.match(setShellVar('GRUB_CMDLINE_LINUX="console=hvc0"\n', 'GRUB_CMDLINE_LINUX', 'console=ttyS0'), /^GRUB_CMDLINE_LINUX="console=ttyS0"\n$/);
  assert.equal(setShellVar('A=1', 'B', 'x y'), 'A=1\nB="x y"\n');
});

test('unsetting comments the assignment out', () => {
  const out = setShellVar('GRUB_DISABLE_LINUX_UUID=true\nX=1\n', 'GRUB_DISABLE_LINUX_UUID', undefined);
  assert.equal(shellVarMap(out).has('GRUB_DISABLE_LINUX_UUID'), false);
  assert.equal(shellVarMap(out).get('X'), '1');
});
