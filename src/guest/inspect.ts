/**
 * What ferry knows about a stopped guest after reading its files: OS,
 * fstab, bootloader, kernels and their virtio drivers, network, console.
 * Works on any directory holding the guest's tree, so it is tested on
 * sample trees as well as on mounted images.
 */
import { messageOf } from '../util/errors.js';
import { parseCrypttab, type CrypttabEntry } from './crypttab.js';
import { parseFstab, type FstabEntry } from './fstab.js';
import { grubTerminalLines, parseBootEntries, parseDefaultGrub, type BootEntry, type GrubFlavour } from './grub.js';
import { guestFileExists, guestPath, listGuestDir, readGuestFile } from './guest-files.js';
import { parseIfcfg } from './ifcfg.js';
import { listInitramfs, modulesIn } from './initramfs.js';
import { parseInterfaces } from './interfaces.js';
import { paramValue, paramValues } from './kernel-cmdline.js';
import { parseNetplan } from './netplan.js';
import type { NameBinding, NetConfig } from './network-config.js';
import { parseNmKeyfile } from './nm-keyfile.js';
import { parseReleaseFile, RELEASE_FILES, type OsInfo } from './os-release.js';
import { parseNetNameRules } from './udev-net-rules.js';

export type DriverPresence = 'builtin' | 'module' | 'missing';

export interface KernelInfo {
  version: string;
  vmlinuz: string;
  initramfs?: string;
  drivers: Record<VirtioDriver, DriverPresence>;
  /** Which virtio modules the initramfs holds; undefined when there is no initramfs or it cannot be read. */
  initramfsModules?: Record<VirtioDriver, boolean>;
  initramfsError?: string;
}

export const VIRTIO_DRIVERS = ['virtio_pci', 'virtio_blk', 'virtio_net'] as const;
export type VirtioDriver = (typeof VIRTIO_DRIVERS)[number];

export interface BootConfigFile {
  path: string;
  flavour: GrubFlavour;
  entries: (BootEntry & { root?: string; resume?: string; consoles: string[] })[];
  terminal: string[];
}

export interface DefaultGrubInfo {
  path: string;
  cmdlineLinux: string;
  cmdlineLinuxDefault: string;
  disableLinuxUuid: boolean;
  root?: string;
  resume?: string;
  consoles: string[];
}

export interface GuestFiles {
  os?: OsInfo;
  fstab: FstabEntry[];
  crypttab: CrypttabEntry[];
  bootloader: { files: BootConfigFile[]; defaultGrub?: DefaultGrubInfo };
  kernels: KernelInfo[];
  initramfsTool?: 'initramfs-tools' | 'dracut' | 'mkinitrd';
  network: { configs: NetConfig[]; nameBindings: NameBinding[]; predictableNames: boolean };
  console: { kernel: string[]; gettys: string[] };
  staleCaches: string[];
}

export const BOOT_CONFIGS: { path: string; flavour: GrubFlavour }[] = [
  { path: '/boot/grub/grub.cfg', flavour: 'grub2' },
  { path: '/boot/grub2/grub.cfg', flavour: 'grub2' },
  { path: '/boot/grub/menu.lst', flavour: 'grub-legacy' },
  { path: '/boot/grub/grub.conf', flavour: 'grub-legacy' },
];

export const STALE_CACHES = ['/etc/blkid.tab', '/etc/blkid.tab.old', '/etc/blkid/blkid.tab', '/etc/blkid/blkid.tab.old', '/etc/lvm/cache/.cache'];

export async function readOs(root: string): Promise<OsInfo | undefined> {
  for (const f of RELEASE_FILES) {
    const text = await readGuestFile(root, f);
    const info = text === undefined ? undefined : parseReleaseFile(f, text);
    if (info) return info;
  }
  return undefined;
}

async function readBootloader(root: string): Promise<GuestFiles['bootloader']> {
  const files: BootConfigFile[] = [];
  const seen = new Set<string>();
  for (const { path, flavour } of BOOT_CONFIGS) {
    const text = await readGuestFile(root, path);
    if (text === undefined) continue;
    const real = await guestPath(root, path);
    if (seen.has(real)) continue; // grub.conf is often a symlink to menu.lst
    seen.add(real);
    const entries = parseBootEntries(text, flavour).map((e) => ({
      ...e,
      root: paramValue(e.cmdline, 'root'),
      resume: paramValue(e.cmdline, 'resume'),
      consoles: paramValues(e.cmdline, 'console'),
    }));
    files.push({ path, flavour, entries, terminal: grubTerminalLines(text) });
  }
  const text = await readGuestFile(root, '/etc/default/grub');
  let defaultGrub: DefaultGrubInfo | undefined;
  if (text !== undefined) {
    const d = parseDefaultGrub(text);
    const both = `${d.cmdlineLinux} ${d.cmdlineLinuxDefault}`;
    defaultGrub = { path: '/etc/default/grub', ...d, root: paramValue(both, 'root'), resume: paramValue(both, 'resume'), consoles: paramValues(both, 'console') };
  }
  return { files, defaultGrub };
}

async function driverPresence(root: string, version: string, driver: VirtioDriver): Promise<DriverPresence> {
  const dir = `/lib/modules/${version}`;
  const builtin = (await readGuestFile(root, `${dir}/modules.builtin`)) ?? '';
  if (new RegExp(`/${driver}\\.ko\\b`).test(builtin)) return 'builtin';
  const dep = (await readGuestFile(root, `${dir}/modules.dep`)) ?? '';
  if (new RegExp(`/${driver}\\.ko(\\.(xz|zst|gz))?:`).test(dep)) return 'module';
  const config = (await readGuestFile(root, `/boot/config-${version}`)) ?? '';
  const symbol = { virtio_pci: 'VIRTIO_PCI', virtio_blk: 'VIRTIO_BLK', virtio_net: 'VIRTIO_NET' }[driver];
  if (new RegExp(`^CONFIG_${symbol}=y`, 'm').test(config)) return 'builtin';
  return 'missing';
}

const INITRAMFS_NAMES = (v: string): string[] => [`/boot/initrd.img-${v}`, `/boot/initramfs-${v}.img`, `/boot/initrd-${v}.img`, `/boot/initrd-${v}`];

export async function readKernels(root: string, listModules = listInitramfs): Promise<KernelInfo[]> {
  const kernels: KernelInfo[] = [];
  for (const name of await listGuestDir(root, '/boot')) {
    const m = /^(?:vmlinuz|vmlinux|bzImage)-(.+)$/.exec(name);
    if (!m) continue;
    const version = m[1]!;
    const drivers = {} as Record<VirtioDriver, DriverPresence>;
    for (const d of VIRTIO_DRIVERS) drivers[d] = await driverPresence(root, version, d);
    const kernel: KernelInfo = { version, vmlinuz: `/boot/${name}`, drivers };
    for (const candidate of INITRAMFS_NAMES(version)) {
      if (!(await guestFileExists(root, candidate))) continue;
      kernel.initramfs = candidate;
      try {
        const mods = modulesIn(await listModules(await guestPath(root, candidate)));
        kernel.initramfsModules = Object.fromEntries(VIRTIO_DRIVERS.map((d) => [d, mods.has(d)])) as Record<VirtioDriver, boolean>;
      } catch (e) {
        kernel.initramfsError = messageOf(e);
      }
      break;
    }
    kernels.push(kernel);
  }
  return kernels.sort((a, b) => b.version.localeCompare(a.version, undefined, { numeric: true }));
}

async function readNetwork(root: string, cmdlines: string[]): Promise<GuestFiles['network']> {
  const configs: NetConfig[] = [];
  for (const dir of ['/etc/sysconfig/network-scripts', '/etc/sysconfig/network']) {
    for (const f of await listGuestDir(root, dir)) {
      if (!/^ifcfg-/.test(f) || f === 'ifcfg-lo' || /\.(bak|orig|ferry-orig)$|~$/.test(f)) continue;
      configs.push(parseIfcfg(`${dir}/${f}`, (await readGuestFile(root, `${dir}/${f}`)) ?? ''));
    }
  }
  const interfaceFiles = ['/etc/network/interfaces', ...(await listGuestDir(root, '/etc/network/interfaces.d')).map((f) => `/etc/network/interfaces.d/${f}`)];
  for (const f of interfaceFiles) {
    const text = await readGuestFile(root, f);
    if (text !== undefined) configs.push(...parseInterfaces(f, text).configs.filter((c) => c.method !== 'loopback'));
  }
  for (const f of await listGuestDir(root, '/etc/netplan')) {
    if (!/\.ya?ml$/.test(f)) continue;
    try {
      configs.push(...parseNetplan(`/etc/netplan/${f}`, (await readGuestFile(root, `/etc/netplan/${f}`)) ?? ''));
    } catch {
      // An unparsable netplan file is reported by netplan itself on boot; skip it here.
    }
  }
  for (const f of await listGuestDir(root, '/etc/NetworkManager/system-connections')) {
    const path = `/etc/NetworkManager/system-connections/${f}`;
    const c = parseNmKeyfile(path, (await readGuestFile(root, path)) ?? '');
    if (c) configs.push(c);
  }
  const nameBindings: NameBinding[] = [];
  for (const f of await listGuestDir(root, '/etc/udev/rules.d')) {
    if (!/net.*\.rules$/.test(f)) continue;
    nameBindings.push(...parseNetNameRules(`/etc/udev/rules.d/${f}`, (await readGuestFile(root, `/etc/udev/rules.d/${f}`)) ?? ''));
  }
  // systemd-udevd names NICs by their PCI slot (ens3, enp0s3) unless told not to.
  const hasNamePolicy = (await guestFileExists(root, '/lib/udev/rules.d/80-net-setup-link.rules')) || (await guestFileExists(root, '/usr/lib/systemd/network/99-default.link'));
  const disabledOnCmdline = cmdlines.length > 0 && cmdlines.every((c) => paramValue(c, 'net.ifnames') === '0');
  const masked = (await guestFileExists(root, '/etc/systemd/network/99-default.link')) || (await guestFileExists(root, '/etc/udev/rules.d/80-net-setup-link.rules'));
  return { configs, nameBindings, predictableNames: hasNamePolicy && !disabledOnCmdline && !masked };
}

async function readGettys(root: string): Promise<string[]> {
  const inittab = (await readGuestFile(root, '/etc/inittab')) ?? '';
  const ttys = inittab
    .split('\n')
    .filter((l) => !l.trim().startsWith('#') && /getty/.test(l))
    .map((l) => /\b(tty\w+|hvc\d+|xvc\d+|console)\b\s*(\S+)?\s*$/.exec(l.trim())?.[1] ?? /\b(ttyS\d+|hvc\d+|xvc\d+)\b/.exec(l)?.[1])
    .filter((t): t is string => t !== undefined);
  for (const dir of ['/etc/systemd/system/getty.target.wants', '/etc/systemd/system/multi-user.target.wants']) {
    for (const f of await listGuestDir(root, dir)) {
      const m = /^serial-getty@(.+)\.service$/.exec(f);
      if (m) ttys.push(m[1]!);
    }
  }
  return [...new Set(ttys)];
}

export async function readGuestFiles(root: string): Promise<GuestFiles> {
  const os = await readOs(root);
  const fstab = parseFstab((await readGuestFile(root, '/etc/fstab')) ?? '');
  const crypttab = parseCrypttab((await readGuestFile(root, '/etc/crypttab')) ?? '');
  const bootloader = await readBootloader(root);
  const kernels = await readKernels(root);
  const initramfsTool = (await guestFileExists(root, '/usr/sbin/update-initramfs'))
    ? 'initramfs-tools'
    : (await guestFileExists(root, '/usr/bin/dracut')) || (await guestFileExists(root, '/sbin/dracut'))
      ? 'dracut'
      : (await guestFileExists(root, '/sbin/mkinitrd'))
        ? 'mkinitrd'
        : undefined;
  const cmdlines = bootloader.files.flatMap((f) => f.entries.map((e) => e.cmdline));
  const network = await readNetwork(root, cmdlines);
  const kernelConsoles = [...new Set([...bootloader.files.flatMap((f) => f.entries.flatMap((e) => e.consoles)), ...(bootloader.defaultGrub?.consoles ?? [])])];
  const staleCaches: string[] = [];
  for (const c of STALE_CACHES) if (await guestFileExists(root, c)) staleCaches.push(c);
  return { os, fstab, crypttab, bootloader, kernels, initramfsTool, network, console: { kernel: kernelConsoles, gettys: await readGettys(root) }, staleCaches };
}
