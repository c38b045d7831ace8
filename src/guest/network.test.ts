import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIfcfg, setIfcfgHwaddr } from './ifcfg.js';
import { parseInterfaces } from './interfaces.js';
import { parseNetplan, replaceNetplanMacs } from './netplan.js';
import { netmaskToPrefix } from './network-config.js';
import { parseNmKeyfile, setNmKeyfileMac } from './nm-keyfile.js';
import { parseNetNameRules, rewriteNetNameRules } from './udev-net-rules.js';

test('ifcfg from a CentOS Xen guest: static address bound to a MAC', () => {
  const c = parseIfcfg(
    '/etc/sysconfig/network-scripts/ifcfg-eth0',
    `# Xen Virtual Ethernet
DEVICE=eth0
BOOTPROTO=static
BROADCAST=192.168.10.255
HWADDR=00:16:3E:5E:1F:01
IPADDR=192.168.10.21
NETMASK=255.255.255.0
NETWORK=192.168.10.0
ONBOOT=yes
GATEWAY=192.168.10.1
`,
  );
  assert.deepEqual([c.interface, c.mac, c.method, c.addresses, c.gateway], ['eth0', '00:16:3e:5e:1f:01', 'static', ['192.168.10.21/24'], '192.168.10.1']);
  assert.match(setIfcfgHwaddr('HWADDR=00:16:3E:5E:1F:01\n', '52:54:00:aa:bb:cc'), /^HWADDR=52:54:00:AA:BB:CC$/m);
  assert.equal(parseIfcfg('/x/ifcfg-eth1', 'BOOTPROTO=dhcp\n').interface, 'eth1');
  assert.equal(parseIfcfg('/x/ifcfg-eth1', 'IPADDR0=10.1.1.1\nPREFIX0=16\n').addresses[0], '10.1.1.1/16');
});

test('Debian interfaces with netmask, CIDR, hwaddress and sources', () => {
  const f = parseInterfaces(
    '/etc/network/interfaces',
    `# This file describes the network interfaces
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet static
	address 192.168.1.10
	netmask 255.255.255.0
	gateway 192.168.1.1
	hwaddress ether 00:16:3E:00:00:01
	dns-nameservers 192.168.1.1

auto eth1
iface eth1 inet dhcp
iface eth1 inet6 static
    address 2001:db8::5/64
`,
  );
  assert.deepEqual(f.auto, ['lo', 'eth0', 'eth1']);
  assert.deepEqual(f.sources, ['/etc/network/interfaces.d/*']);
  assert.deepEqual(
    f.configs.map((c) => [c.interface, c.method, c.addresses]),
    [
      ['lo', 'loopback', []],
      ['eth0', 'static', ['192.168.1.10/24']],
      ['eth1', 'dhcp', []],
      ['eth1', 'static', ['2001:db8::5/64']],
    ],
  );
  assert.equal(f.configs[1]!.mac, '00:16:3e:00:00:01');
  assert.equal(f.configs[1]!.gateway, '192.168.1.1');
});

const NETPLAN = `# This file is generated from information provided by the datasource.
network:
    version: 2
    ethernets:
        eth0:
            match:
                macaddress: 00:16:3e:5e:1f:01
            set-name: eth0
            addresses: [10.0.0.5/24]
            routes:
              - to: default
                via: 10.0.0.1
        ens4:
            dhcp4: true
`;

test('netplan ethernets matched by MAC or by name', () => {
  const c = parseNetplan('/etc/netplan/50-cloud-init.yaml', NETPLAN);
  assert.deepEqual(
    c.map((x) => [x.interface, x.mac, x.method, x.addresses, x.gateway]),
    [
      ['eth0', '00:16:3e:5e:1f:01', 'static', ['10.0.0.5/24'], '10.0.0.1'],
      ['ens4', undefined, 'dhcp', [], undefined],
    ],
  );
  const out = replaceNetplanMacs(NETPLAN, (m) => (m === '00:16:3e:5e:1f:01' ? '52:54:00:12:34:56' : undefined));
  assert.match(out, /macaddress: 52:54:00:12:34:56/);
  assert.match(out, /# This file is generated/);
  assert.equal(
    replaceNetplanMacs(NETPLAN, () => undefined),
    NETPLAN,
  );
});

test('NetworkManager keyfile with a static address and a MAC', () => {
  const text = `[connection]
id=Wired connection 1
uuid=9a1f3c52-2b7e-4c1e-8f1d-3a0c6e5b7d21
type=ethernet
interface-name=eth0

[ethernet]
mac-address=00:16:3E:5E:1F:01

[ipv4]
address1=10.0.0.5/24,10.0.0.1
dns=10.0.0.1;
method=manual

[ipv6]
method=ignore
`;
  const c = parseNmKeyfile('/etc/NetworkManager/system-connections/eth0.nmconnection', text)!;
  assert.deepEqual([c.interface, c.mac, c.method, c.addresses, c.gateway], ['eth0', '00:16:3e:5e:1f:01', 'static', ['10.0.0.5/24'], '10.0.0.1']);
  assert.match(setNmKeyfileMac(text, '52:54:00:12:34:56'), /^mac-address=52:54:00:12:34:56$/m);
  assert.doesNotMatch(setNmKeyfileMac(text, undefined), /mac-address/);
  assert.equal(parseNmKeyfile('x', '[connection]\ntype=wifi\n'), undefined);
});

test('udev persistent-net rules map MACs to names', () => {
  const text = `# PCI device 0x8086:0x100e (e1000)
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:16:3e:5e:1f:01", ATTR{dev_id}=="0x0", ATTR{type}=="1", KERNEL=="eth*", NAME="eth0"
SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:16:3E:5E:1F:02", ATTR{type}=="1", KERNEL=="eth*", NAME="eth1"
`;
  const b = parseNetNameRules('/etc/udev/rules.d/70-persistent-net.rules', text);
  assert.deepEqual(
    b.map((x) => [x.mac, x.name, x.line]),
    [
      ['00:16:3e:5e:1f:01', 'eth0', 1],
      ['00:16:3e:5e:1f:02', 'eth1', 2],
    ],
  );
  const out = rewriteNetNameRules(text, (x) => (x.name === 'eth0' ? '52:54:00:12:34:56' : x.name === 'eth1' ? null : undefined));
  assert.deepEqual(
    parseNetNameRules('', out).map((x) => [x.mac, x.name]),
    [['52:54:00:12:34:56', 'eth0']],
  );
});

test('netmasks convert to prefix lengths', () => {
  assert.equal(netmaskToPrefix('255.255.255.0'), 24);
  assert.equal(netmaskToPrefix('255.255.0.0'), 16);
  assert.equal(netmaskToPrefix('255.255.255.255'), 32);
  assert.equal(netmaskToPrefix('255.0.255.0'), undefined);
});
