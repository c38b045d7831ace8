/** What stops a guest from booting or reaching its network on the target, each with its fix. */
import { isLocalBlockEntry } from './fstab.js';
import type { Filesystem } from './image.js';
import type { GuestFiles } from './inspect.js';
import { classifyDeviceName } from './device-names.js';
import { resolveFstabDevice } from './mount.js';
import type { GuestTarget } from './target.js';

export interface Problem {
  /** Stable identifier, e.g. "fstab-device-name". */
  code: string;
  severity: 'error' | 'warning';
  message: string;
  /** What fixes it, in words. */
  fix: string;
  /** The `ferry guest fix` operation that fixes it, if one does. */
  operation?: string;
  file?: string;
}

/** targetMacs: MACs the guest's NICs will have on the target; bindings to them are no problem. */
export function findProblems(guest: GuestFiles, target: GuestTarget, filesystems: readonly Filesystem[] = [], targetMacs: readonly string[] = []): Problem[] {
  const kept = new Set(targetMacs.map((m) => m.toLowerCase()));
  const problems: Problem[] = [];
  const uuidFix = (spec: string): string => {
    const name = classifyDeviceName(spec, target);
    const fs = name.partition !== undefined ? filesystems.find((f) => f.partition === name.partition && !f.lv) : undefined;
    return fs?.uuid ? `rewrite to UUID=${fs.uuid}` : "rewrite to UUID= of the filesystem (or the target's device name)";
  };
  for (const e of guest.fstab) {
    if (e.device.survives || !isLocalBlockEntry(e) || e.options.includes('noauto')) continue;
    problems.push({
      code: 'fstab-device-name',
      severity: 'error',
      file: '/etc/fstab',
      operation: 'device-names',
      message: `/etc/fstab mounts ${e.mountPoint} from "${e.spec}": ${e.device.why}`,
      fix: uuidFix(e.spec),
    });
  }
  for (const e of guest.fstab) {
    if (filesystems.length === 0 || !['uuid', 'by-uuid', 'partuuid', 'by-partuuid'].includes(e.device.kind) || e.options.includes('noauto') || e.options.includes('nofail')) continue;
    if (resolveFstabDevice(e, filesystems)) continue;
    problems.push({
      code: 'fstab-unknown-uuid',
      severity: 'warning',
      file: '/etc/fstab',
      operation: 'uuid-references',
      message: `/etc/fstab mounts ${e.mountPoint} from "${e.spec}", which is none of this disk's filesystems (another disk, or the UUID changed in the move)`,
      fix: 'if the UUID changed: --restore-uuids SOURCE_IMAGE or --uuid-map OLD=NEW (--uuid-mode restore|rewrite)',
    });
  }
  for (const e of guest.crypttab) {
    if (e.device.survives) continue;
    problems.push({
      code: 'crypttab-device-name',
      severity: 'error',
      file: '/etc/crypttab',
      operation: 'device-names',
      message: `/etc/crypttab opens ${e.name} from "${e.source}": ${e.device.why}`,
      fix: uuidFix(e.source),
    });
  }
  for (const bootFile of guest.bootloader.files) {
    const bad = new Set<string>();
    for (const e of bootFile.entries) {
      for (const [param, value] of [
        ['root', e.root],
        ['resume', e.resume],
      ] as const) {
        if (value && !classifyDeviceName(value, target).survives) bad.add(`${param}=${value}`);
      }
    }
    for (const param of bad) {
      problems.push({
        code: 'boot-device-name',
        severity: 'error',
        file: bootFile.path,
        operation: 'device-names',
        message: `${bootFile.path} boots with ${param}, a name the target does not give the disk`,
        fix: uuidFix(param.slice(param.indexOf('=') + 1)),
      });
    }
  }
  const defaultGrub = guest.bootloader.defaultGrub;
  if (defaultGrub) {
    for (const [param, value] of [
      ['root', defaultGrub.root],
      ['resume', defaultGrub.resume],
    ] as const) {
      if (value && !classifyDeviceName(value, target).survives) {
        problems.push({ code: 'boot-device-name', severity: 'error', file: defaultGrub.path, operation: 'device-names', message: `${defaultGrub.path} sets ${param}=${value}`, fix: uuidFix(value) });
      }
    }
    if (defaultGrub.disableLinuxUuid) {
      problems.push({
        code: 'grub-disable-uuid',
        severity: 'warning',
        file: defaultGrub.path,
        operation: 'device-names',
        message: `${defaultGrub.path} sets GRUB_DISABLE_LINUX_UUID=true, so the next update-grub writes a device name for root=`,
        fix: 'comment GRUB_DISABLE_LINUX_UUID out so GRUB uses root=UUID=',
      });
    }
  }
  const foreign = guest.console.kernel.filter((c) => target.foreignConsoles.test(c));
  if (foreign.length > 0 && !guest.console.kernel.some((c) => c.startsWith(target.console))) {
    problems.push({
      code: 'console',
      severity: 'error',
      operation: 'console',
      message: `the kernel console is ${foreign.join(', ')}, which ${target.name} does not have: no boot messages and no login on the serial console`,
      fix: `move console= to ${target.console}`,
    });
  }
  const foreignGettys = guest.console.gettys.filter((t) => target.foreignConsoles.test(t));
  if (foreignGettys.length > 0 && !guest.console.gettys.includes(target.console)) {
    problems.push({
      code: 'console-getty',
      severity: 'warning',
      operation: 'console',
      file: '/etc/inittab',
      message: `a login prompt runs on ${foreignGettys.join(', ')} only`,
      fix: `run it on ${target.console}`,
    });
  }
  for (const kernel of guest.kernels) {
    for (const driver of [...target.bootDrivers, ...target.netDrivers]) {
      if (kernel.drivers[driver] === 'missing') {
        problems.push({
          code: 'kernel-driver-missing',
          severity: 'error',
          message: `kernel ${kernel.version} has no ${driver} driver (neither built in nor a module)`,
          fix: 'install a kernel with virtio drivers in the guest before moving it',
        });
      }
    }
    if (kernel.initramfsModules) {
      const lacking = target.bootDrivers.filter((d) => kernel.drivers[d] === 'module' && !kernel.initramfsModules![d]);
      if (lacking.length > 0) {
        problems.push({
          code: 'initramfs-driver-missing',
          severity: 'error',
          file: kernel.initramfs,
          operation: 'initramfs-virtio',
          message: `initramfs ${kernel.initramfs} lacks ${lacking.join(', ')}, so kernel ${kernel.version} cannot find its root disk`,
          fix: guest.initramfsTool ? `add the virtio modules to the ${guest.initramfsTool} configuration and rebuild the initramfs in the guest` : 'rebuild the initramfs with the virtio modules',
        });
      }
    }
  }
  const { configs, nameBindings, predictableNames } = guest.network;
  for (const binding of nameBindings.filter((x) => !kept.has(x.mac))) {
    problems.push({
      code: 'network-mac-binding',
      severity: 'error',
      file: binding.file,
      operation: 'network',
      message: `${binding.file} names the NIC with MAC ${binding.mac} "${binding.name}"; a new NIC with another MAC gets another name and ${binding.name}'s configuration no longer applies`,
      fix: `give --mac ${binding.mac}=NEW to move the rule to the new MAC, or let ferry drop the MAC binding and pin the name`,
    });
  }
  for (const config of configs.filter((x) => x.mac && x.format !== 'interfaces' && !kept.has(x.mac))) {
    problems.push({
      code: 'network-mac-binding',
      severity: 'error',
      file: config.file,
      operation: 'network',
      message: `${config.file} binds ${config.interface ?? 'its interface'} to MAC ${config.mac}`,
      fix: `give --mac ${config.mac}=NEW to update it, or let ferry drop the MAC binding`,
    });
  }
  const kernelNamed = [...new Set(configs.map((c) => c.interface).filter((n): n is string => n !== undefined && /^eth\d+$/.test(n)))];
  if (predictableNames && kernelNamed.length > 0) {
    problems.push({
      code: 'network-interface-name',
      severity: 'error',
      operation: 'network',
      message: `network configuration is for ${kernelNamed.join(', ')}, but udev will name the target's virtio NIC by its PCI slot (ens3, enp0s3)`,
      fix: 'pin the kernel names with net.ifnames=0 on the kernel command line',
    });
  }
  for (const cache of guest.staleCaches) {
    problems.push({ code: 'stale-cache', severity: 'warning', file: cache, operation: 'stale-caches', message: `${cache} caches the old disk's device names`, fix: 'remove it (kept as .ferry-orig)' });
  }
  return problems;
}
