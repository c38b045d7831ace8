/**
 * What a lab host sees of the network devices. The lab hosts share the
 * machine's network stack (they reach each other on loopback), so a bridge
 * made for one is there for both; a test of a target that lacks a bridge
 * gives that host, in its mount namespace only, the devices of an empty
 * network namespace: a sysfs mounted from one, over /sys/class/net, where
 * ferry's agent looks for bridges. libvirt and QEMU still reach the
 * machine's devices through netlink.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { runInside, type LabHostEntry } from './inside.js';

const CLASS_NET = '/sys/class/net';

/** With `isolated`, the host sees no network device but lo under /sys/class/net; without, the machine's own again. */
export async function changeLabHostNetView(host: LabHostEntry, change: { isolated: boolean }): Promise<void> {
  const sysfs = join(host.root, 'sysfs-isolated');
  // Whatever an earlier change mounted comes off first.
  await runInside(host, ['umount', CLASS_NET], { allowFailure: true });
  await runInside(host, ['umount', sysfs], { allowFailure: true });
  if (!change.isolated) return;
  await fs.mkdir(sysfs, { recursive: true });
  // The mount keeps the new network namespace alive after unshare's own process ends.
  await runInside(host, ['unshare', '--net', '--', 'mount', '-t', 'sysfs', 'sysfs', sysfs]);
  await runInside(host, ['mount', '--bind', join(sysfs, 'class', 'net'), CLASS_NET]);
}
