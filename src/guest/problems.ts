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
export function findProblems(g: GuestFiles, target: GuestTarget, filesystems: readonly Filesystem[] = [], targetMacs: readonly string[] = []): Problem[] {
  const kept = new Set(targetMacs.map((m) => m.toLowerCase()));
  const problems: Problem[] = [];
  const uuidFix = (spec: string): string => {
    const n = classifyDeviceName(spec, target);
    const fs = n.partition !== undefined ? filesystems.find((f) => f.partition === n.partition && !f.lv) : undefined;
    return fs?.uuid ? `rewrite to UUID=${fs.uuid}` : "rewrite to UUID= of the filesystem (or the target's device name)";
  };
  for (const e of g.fstab) {
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
  for (const e of g.fstab) {
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
  for (const e of g.crypttab) {
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
  for (const f of g.bootloader.files) {
    const bad = new Set<string>();
    for (const e of f.entries) {
      for (const [param, value] of [
        ['root', e.root],
        ['resume', e.resume],
      ] as const) {
        if (value && !classifyDeviceName(value, target).survives) bad.add(`${param}=${value}`);
      }
    }
    for (const b of bad) {
      problems.push({
        code: 'boot-device-name',
        severity: 'error',
        file: f.path,
        operation: 'device-names',
        message: `${f.path} boots with ${b}, a name the target does not give the disk`,
        fix: uuidFix(b.slice(b.indexOf('=') + 1)),
      });
    }
  }
  const dg = g.bootloader.defaultGrub;
  if (dg) {
    for (const [param, value] of [
      ['root', dg.root],
      ['resume', dg.resume],
    ] as const) {
      if (value && !classifyDeviceName(value, target).survives) {
        problems.push({ code: 'boot-device-name', severity: 'error', file: dg.path, operation: 'device-names', message: `${dg.path} sets ${param}=${value}`, fix: uuidFix(value) });
      }
    }
    if (dg.disableLinuxUuid) {
      problems.push({
        code: 'grub-disable-uuid',
        severity: 'warning',
        file: dg.path,
        operation: 'device-names',
        message: `${dg.path} sets GRUB_DISABLE_LINUX_UUID=true, so the next update-grub writes a device name for root=`,
        fix: 'comment GRUB_DISABLE_LINUX_UUID out so GRUB uses root=UUID=',
      });
    }
  }
  const foreign = g.console.kernel.filter((c) => target.foreignConsoles.test(c));
  if (foreign.length > 0 && !g.console.kernel.some((c) => c.startsWith(target.console))) {
    problems.push({
      code: 'console',
      severity: 'error',
      operation: 'console',
      message: `the kernel console is ${foreign.join(', ')}, which ${target.name} does not have: no boot messages and no login on the serial console`,
      fix: `move console= to ${target.console}`,
    });
  }
  const foreignGettys = g.console.gettys.filter((t) => target.foreignConsoles.test(t));
  if (foreignGettys.length > 0 && !g.console.gettys.includes(target.console)) {
    problems.push({
      code: 'console-getty',
      severity: 'warning',
      operation: 'console',
      file: '/etc/inittab',
      message: `a login prompt runs on ${foreignGettys.join(', ')} only`,
      fix: `run it on ${target.console}`,
    });
  }
  for (const k of g.kernels) {
    for (const d of [...target.bootDrivers, ...target.netDrivers]) {
      if (k.drivers[d] === 'missing') {
        problems.push({
          code: 'kernel-driver-missing',
          severity: 'error',
          message: `kernel ${k.version} has no ${d} driver (neither built in nor a module)`,
          fix: 'install a kernel with virtio drivers in the guest before moving it',
        });
      }
    }
    if (k.initramfsModules) {
      const lacking = target.bootDrivers.filter((d) => k.drivers[d] === 'module' && !k.initramfsModules![d]);
      if (lacking.length > 0) {
        problems.push({
          code: 'initramfs-driver-missing',
          severity: 'error',
          file: k.initramfs,
          operation: 'initramfs-virtio',
          message: `initramfs ${k.initramfs} lacks ${lacking.join(', ')}, so kernel ${k.version} cannot find its root disk`,
          fix: g.initramfsTool ? `add the virtio modules to the ${g.initramfsTool} configuration and rebuild the initramfs in the guest` : 'rebuild the initramfs with the virtio modules',
        });
      }
    }
  }
  const { configs, nameBindings, predictableNames } = g.network;
  for (const b of nameBindings.filter((x) => !kept.has(x.mac))) {
    problems.push({
      code: 'network-mac-binding',
      severity: 'error',
      file: b.file,
      operation: 'network',
      message: `${b.file} names the NIC with MAC ${b.mac} "${b.name}"; a new NIC with another MAC gets another name and ${b.name}'s configuration no longer applies`,
      fix: `give --mac ${b.mac}=NEW to move the rule to the new MAC, or let ferry drop the MAC binding and pin the name`,
    });
  }
  for (const c of configs.filter((x) => x.mac && x.format !== 'interfaces' && !kept.has(x.mac))) {
    problems.push({
      code: 'network-mac-binding',
      severity: 'error',
      file: c.file,
      operation: 'network',
      message: `${c.file} binds ${c.interface ?? 'its interface'} to MAC ${c.mac}`,
      fix: `give --mac ${c.mac}=NEW to update it, or let ferry drop the MAC binding`,
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
  for (const c of g.staleCaches) {
    problems.push({ code: 'stale-cache', severity: 'warning', file: c, operation: 'stale-caches', message: `${c} caches the old disk's device names`, fix: 'remove it (kept as .ferry-orig)' });
  }
  return problems;
}
