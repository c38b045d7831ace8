/**
 * The guest fixes, as a registry of small operations applied in a fixed
 * order (in the manner of virt-v2v's conversion steps): each says what it
 * would do, and makes its edits through the ChangeLog so every change is a
 * diff with the original kept.
 */
import { run } from '../util/exec.js';
import type { ChangeLog } from './change-log.js';
import { rewriteCrypttabDevices } from './crypttab.js';
import { classifyDeviceName, targetKernelName } from './device-names.js';
import { isLocalBlockEntry, rewriteFstabDevices } from './fstab.js';
import { rewriteBootCmdlines, rewriteDefaultGrubCmdlines } from './grub.js';
import { guestPath } from './guest-files.js';
import { setIfcfgHwaddr } from './ifcfg.js';
import type { Filesystem } from './image.js';
import type { GuestFiles } from './inspect.js';
import { editParams, paramValue, setParam } from './kernel-cmdline.js';
import { resolveFstabDevice } from './mount.js';
import { replaceNetplanMacs } from './netplan.js';
import { setNmKeyfileMac } from './nm-keyfile.js';
import { setShellVar } from './shell-vars.js';
import type { GuestTarget } from './target.js';
import { rewriteNetNameRules } from './udev-net-rules.js';

export interface FixContext {
  root: string;
  guest: GuestFiles;
  filesystems: readonly Filesystem[];
  target: GuestTarget;
  log: ChangeLog;
  /** Old MAC -> new MAC, from --mac. */
  macMap: ReadonlyMap<string, string>;
  /** Old UUID -> new UUID references to rewrite (--uuid-mode rewrite). */
  uuidRewrites: ReadonlyMap<string, string>;
}

export interface FixOperation {
  name: string;
  enabledByDefault: boolean;
  describe: string;
  apply(ctx: FixContext): Promise<void>;
}

/** A name for `spec` that survives the move: UUID=, else LABEL=, else the target's kernel name. */
function survivingName(spec: string, ctx: FixContext, opts: { forKernelRoot?: boolean; hasInitramfs?: boolean } = {}): string | undefined {
  const name = classifyDeviceName(spec, ctx.target);
  if (name.survives) return undefined;
  const fs = resolveFstabDevice({ spec, device: name }, ctx.filesystems);
  // Without an initramfs the kernel itself resolves root=, and it knows PARTUUID= but not UUID=.
  if (opts.forKernelRoot && !opts.hasInitramfs) return fs?.partUuid ? `PARTUUID=${fs.partUuid}` : targetKernelName(name, ctx.target);
  if (fs?.uuid) return `UUID=${fs.uuid}`;
  if (fs?.label) return `LABEL=${fs.label}`;
  return targetKernelName(name, ctx.target);
}

function rewriteUuidRefs(text: string, map: ReadonlyMap<string, string>): string {
  let out = text;
  for (const [from, to] of map) out = out.split(from).join(to);
  return out;
}

async function editGuestFile(ctx: FixContext, file: string, edit: (text: string) => string): Promise<void> {
  const text = await ctx.log.read(file);
  if (text !== undefined) await ctx.log.edit(file, edit(text));
}

/** Edits every boot entry's command line and /etc/default/grub's; `addsParam` edits only GRUB_CMDLINE_LINUX there (one place is enough). */
async function editBootConfigs(ctx: FixContext, edit: (cmdline: string, hasInitrd: boolean) => string, editDefault?: (text: string) => string, addsParam = false): Promise<void> {
  for (const f of ctx.guest.bootloader.files) {
    await editGuestFile(ctx, f.path, (t) => rewriteBootCmdlines(t, f.flavour, (c, e) => edit(c, e.initrd !== undefined)));
  }
  if (ctx.guest.bootloader.defaultGrub) {
    await editGuestFile(ctx, '/etc/default/grub', (t) => {
      const out = rewriteDefaultGrubCmdlines(t, (c) => edit(c, true), addsParam ? ['GRUB_CMDLINE_LINUX'] : undefined);
      return editDefault ? editDefault(out) : out;
    });
  }
}

const uuidReferences: FixOperation = {
  name: 'uuid-references',
  enabledByDefault: true,
  describe: 'rewrite references to old filesystem UUIDs to the new ones (--uuid-mode rewrite)',
  async apply(ctx) {
    if (ctx.uuidRewrites.size === 0) return;
    for (const f of ['/etc/fstab', '/etc/crypttab', '/etc/default/grub', ...ctx.guest.bootloader.files.map((b) => b.path)]) {
      await editGuestFile(ctx, f, (t) => rewriteUuidRefs(t, ctx.uuidRewrites));
    }
  },
};

const deviceNames: FixOperation = {
  name: 'device-names',
  enabledByDefault: true,
  describe: "rewrite device names in fstab, crypttab and the bootloader to UUID= (or the target's names)",
  async apply(ctx) {
    await editGuestFile(ctx, '/etc/fstab', (t) => rewriteFstabDevices(t, (e) => (isLocalBlockEntry(e) ? survivingName(e.spec, ctx) : undefined)));
    await editGuestFile(ctx, '/etc/crypttab', (t) => rewriteCrypttabDevices(t, (e) => survivingName(e.source, ctx)));
    await editBootConfigs(
      ctx,
      (c, hasInitrd) =>
        editParams(c, (p) => {
          const m = /^(root|resume)=(.+)$/.exec(p);
          if (!m) return undefined;
          const to = survivingName(m[2]!, ctx, { forKernelRoot: m[1] === 'root', hasInitramfs: hasInitrd });
          return to === undefined ? undefined : `${m[1]}=${to}`;
        }),
      (t) => (ctx.guest.bootloader.defaultGrub?.disableLinuxUuid ? setShellVar(t, 'GRUB_DISABLE_LINUX_UUID', undefined) : t),
    );
  },
};

const network: FixOperation = {
  name: 'network',
  enabledByDefault: true,
  describe: 'keep network configuration applying on the new NIC: move MAC bindings to --mac NEW (or drop them) and pin kernel interface names (net.ifnames=0)',
  async apply(ctx) {
    const { configs, nameBindings, predictableNames } = ctx.guest.network;
    const mapped = (mac: string): string | undefined => ctx.macMap.get(mac.toLowerCase());
    // Bindings already on a new MAC (a second run) stay as they are.
    const newMacs = new Set(ctx.macMap.values());
    const files = new Set(nameBindings.filter((b) => !newMacs.has(b.mac)).map((b) => b.file));
    for (const f of files) {
      // With --mac the rule follows the NIC; without, the rule goes and the name is pinned below.
      await editGuestFile(ctx, f, (t) => rewriteNetNameRules(t, (b) => (newMacs.has(b.mac) ? undefined : (mapped(b.mac) ?? null))));
    }
    for (const c of configs.filter((x) => x.mac && !newMacs.has(x.mac))) {
      const to = mapped(c.mac!);
      if (c.format === 'ifcfg') await editGuestFile(ctx, c.file, (t) => setIfcfgHwaddr(t, to));
      else if (c.format === 'nm-keyfile') await editGuestFile(ctx, c.file, (t) => setNmKeyfileMac(t, to));
      else if (c.format === 'netplan' && to) await editGuestFile(ctx, c.file, (t) => replaceNetplanMacs(t, (m) => mapped(m)));
      else if (c.format === 'interfaces' && to) await editGuestFile(ctx, c.file, (t) => t.replace(new RegExp(c.mac!.replace(/:/g, ':'), 'gi'), to));
    }
    const kernelNamed = configs.some((c) => c.interface && /^eth\d+$/.test(c.interface));
    if (predictableNames && kernelNamed) {
      await editBootConfigs(ctx, (c) => (paramValue(c, 'net.ifnames') === '0' ? c : setParam(c, 'net.ifnames', '0')), undefined, true);
    }
  },
};

const console_: FixOperation = {
  name: 'console',
  enabledByDefault: true,
  describe: "move the kernel console and login prompt from hvc0/xvc0 to the target's serial console (ttyS0)",
  async apply(ctx) {
    const { target } = ctx;
    const serial = `${target.console},115200n8`;
    const fix = (c: string): string => {
      const consoles = c.split(/\s+/).filter((p) => p.startsWith('console='));
      if (!consoles.some((p) => target.foreignConsoles.test(p.slice(8)))) return c;
      const hasTarget = consoles.some((p) => p.slice(8).startsWith(target.console));
      let replaced = hasTarget;
      return editParams(c, (p) => {
        if (!p.startsWith('console=') || !target.foreignConsoles.test(p.slice(8))) return undefined;
        if (replaced) return null;
        replaced = true;
        return `console=${serial}`;
      });
    };
    await editBootConfigs(ctx, (c) => fix(c));
    await editGuestFile(ctx, '/etc/inittab', (t) =>
      t
        .split('\n')
        .map((l) => (!l.trim().startsWith('#') && /getty/.test(l) && /\b(hvc0|xvc0)\b/.test(l) ? l.replace(/\b(hvc0|xvc0)\b/g, target.console).replace(/^(\w+):/, 'S0:') : l))
        .join('\n'),
    );
    await editGuestFile(ctx, '/etc/securetty', (t) => (t.split('\n').includes(target.console) ? t : `${t.replace(/\n?$/, '\n')}${target.console}\n`));
  },
};

const staleCaches: FixOperation = {
  name: 'stale-caches',
  enabledByDefault: true,
  describe: "remove caches of the old disk's device names (blkid.tab, LVM device cache)",
  async apply(ctx) {
    for (const c of ctx.guest.staleCaches) await ctx.log.remove(c);
  },
};

const VIRTIO_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'virtio_net'];

async function inGuest(root: string, argv: string[]): Promise<void> {
  const binds = ['/dev', '/proc', '/sys'];
  const mounted: string[] = [];
  try {
    for (const b of binds) {
      const at = await guestPath(root, b);
      await run('mount', ['--bind', b, at]);
      mounted.push(at);
    }
    await run('chroot', [root, ...argv], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' }, timeoutMs: 15 * 60_000 });
  } finally {
    for (const m of mounted.reverse()) await run('umount', ['-l', m], { allowFailure: true });
  }
}

const initramfsVirtio: FixOperation = {
  name: 'initramfs-virtio',
  enabledByDefault: true,
  describe: 'add the virtio modules to the initramfs configuration and rebuild the initramfs inside the guest',
  async apply(ctx) {
    const needed = ctx.guest.kernels.some((k) => k.initramfsModules && ctx.target.bootDrivers.some((d) => k.drivers[d] === 'module' && !k.initramfsModules![d]));
    if (!needed) return;
    if (ctx.guest.initramfsTool === 'initramfs-tools') {
      const file = '/etc/initramfs-tools/modules';
      const text = (await ctx.log.read(file)) ?? '';
      const have = new Set(text.split('\n').map((l) => l.trim().split(/\s+/)[0]));
      const add = VIRTIO_MODULES.filter((m) => !have.has(m));
      if (add.length > 0) await ctx.log.edit(file, `${text.replace(/\n?$/, '\n')}# added by ferry for KVM virtio\n${add.join('\n')}\n`);
      await ctx.log.command('chroot GUEST update-initramfs -u -k all', () => inGuest(ctx.root, ['update-initramfs', '-u', '-k', 'all']));
    } else if (ctx.guest.initramfsTool === 'dracut') {
      await ctx.log.edit('/etc/dracut.conf.d/ferry-virtio.conf', `# added by ferry for KVM virtio\nadd_drivers+=" ${VIRTIO_MODULES.join(' ')} "\n`);
      await ctx.log.command('chroot GUEST dracut -f --regenerate-all', () => inGuest(ctx.root, ['dracut', '-f', '--regenerate-all']));
    } else {
      for (const k of ctx.guest.kernels.filter((x) => x.initramfs)) {
        const argv = ['mkinitrd', '-f', ...VIRTIO_MODULES.slice(0, 2).map((m) => `--with=${m}`), k.initramfs!, k.version];
        await ctx.log.command(`chroot GUEST ${argv.join(' ')}`, () => inGuest(ctx.root, argv));
      }
    }
  },
};

/** Every operation, in the order they are applied. */
export const FIX_OPERATIONS: readonly FixOperation[] = [uuidReferences, deviceNames, network, console_, staleCaches, initramfsVirtio];
