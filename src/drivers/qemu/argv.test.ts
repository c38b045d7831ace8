import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accelOf, filesQemuCreates, formatKeyval, parseKeyval, parseQemuArgv, qemuLogFile, targetArgv } from './argv.js';

const argv = [
  '/usr/bin/qemu-system-x86_64',
  '-name',
  'guest=web01,debug-threads=on',
  '-S',
  '-m',
  '256',
  '-nodefaults',
  '-drive',
  'file=/var/lib/ferry/images/web01.qcow2,format=qcow2,if=none,id=drive0,cache=none',
  '-device',
  'virtio-blk-pci,drive=drive0,id=disk0',
  '-chardev',
  'socket,id=mon0,path=/run/ferry/web01.qmp,server=on,wait=off',
  '-mon',
  'chardev=mon0,mode=control',
  '-daemonize',
  '-pidfile',
  '/run/ferry/web01.pid',
];

test('argv parsing finds the name and a QMP socket given through -chardev/-mon', () => {
  const p = parseQemuArgv(argv);
  assert.equal(p.name, 'web01');
  assert.equal(p.qmpSocket, '/run/ferry/web01.qmp');
});

test('argv parsing finds a QMP socket given with -qmp unix:', () => {
  const p = parseQemuArgv(['qemu-system-x86_64', '-name', 'db', '-qmp', 'unix:/tmp/db.sock,server=on,wait=off']);
  assert.equal(p.name, 'db');
  assert.equal(p.qmpSocket, '/tmp/db.sock');
});

test('keyval keeps escaped commas in paths', () => {
  const kv = parseKeyval('file=/a,,b.img,format=raw');
  assert.equal(kv.get('file'), '/a,b.img');
  assert.equal(formatKeyval(kv), 'file=/a,,b.img,format=raw');
});

test('target argv maps disks, waits for incoming and drops daemon options', () => {
  const t = targetArgv(parseQemuArgv(argv), { diskPaths: new Map([['/var/lib/ferry/images/web01.qcow2', '/dev/vg0/web01']]), diskFormats: new Map([['/var/lib/ferry/images/web01.qcow2', 'raw']]) });
  assert.ok(t.includes('file=/dev/vg0/web01,format=raw,if=none,id=drive0,cache=none'));
  assert.deepEqual(t.slice(-2), ['-incoming', 'defer']);
  assert.ok(!t.includes('-S') && !t.includes('-daemonize') && !t.includes('-pidfile'));
  assert.ok(t.includes('virtio-blk-pci,drive=drive0,id=disk0'));
});

test('accelOf: -accel, -machine accel= and -enable-kvm; TCG without any', () => {
  const acc = (...args: string[]): string => accelOf(parseQemuArgv(['qemu-system-x86_64', ...args]));
  assert.equal(acc('-m', '1G'), 'tcg');
  assert.equal(acc('-accel', 'kvm'), 'kvm');
  assert.equal(acc('-accel', 'tcg,thread=single'), 'tcg');
  assert.equal(acc('-machine', 'pc,accel=kvm:tcg'), 'kvm');
  assert.equal(acc('-enable-kvm'), 'kvm');
});

test("QEMU's log (-D) is where a daemonized QEMU's last words go, and a file QEMU makes on the target", () => {
  const parsed = parseQemuArgv(['qemu-system-x86_64', '-name', 'guest=vm1', '-D', '/var/log/vm1.qemu.log', '-d', 'guest_errors', '-qmp', 'unix:/run/vm1.qmp,server=on,wait=off']);
  assert.equal(qemuLogFile(parsed), '/var/log/vm1.qemu.log');
  assert.deepEqual(filesQemuCreates(parsed).sort(), ['/run/vm1.qmp', '/var/log/vm1.qemu.log']);
  assert.equal(qemuLogFile(parseQemuArgv(['qemu-system-x86_64', '-name', 'vm2'])), undefined);
});
