/**
 * `ferry guest inspect|fix IMAGE`: offline inspection and fixes of a stopped
 * guest's disk, locally or on another host (HOST:PATH) through its agent.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { AgentClient } from '../../hosts/agent-client.js';
import { findHost, loadInventory } from '../../hosts/inventory.js';
import { FerryError, formatError } from '../../util/errors.js';
import type { GuestFixParams } from '../../agent/handlers/guest.js';
import { fixImage, FIX_OPERATIONS, inspectImage, type FixResult, type GuestReport, type Problem } from '../../guest/mod.js';
import { isMac } from '../../guest/network-config.js';

interface Located {
  host?: string;
  path: string;
}

/** "HOST:PATH" names an image on another host; a local path that exists always wins. */
function locate(image: string): Located {
  const m = /^([A-Za-z0-9][\w.-]*):(\/.*)$/.exec(image);
  if (m && !existsSync(image)) return { host: m[1], path: m[2]! };
  return { path: image };
}

async function onHost<T>(hostName: string, hostsFile: string | undefined, call: (c: AgentClient) => Promise<T>): Promise<T> {
  const client = await AgentClient.connect(findHost(loadInventory(hostsFile), hostName));
  try {
    return await call(client);
  } finally {
    client.close();
  }
}

function pairs(values: string[], what: string, check: (s: string) => boolean): [string, string][] {
  return values.map((v) => {
    const [a, b, ...rest] = v.split('=');
    if (!a || !b || rest.length > 0 || !check(a) || !check(b)) {
      throw new FerryError('USAGE', `Cannot read ${what} "${v}"`, { hint: `write it as OLD=NEW, e.g. ${what === '--mac' ? '00:16:3e:5e:1f:01=52:54:00:12:34:56' : 'OLD-UUID=NEW-UUID'}` });
    }
    return [a.toLowerCase(), b.toLowerCase()];
  });
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function printProblems(problems: Problem[]): void {
  if (problems.length === 0) {
    console.log('\nNo problems: the guest needs no fix for this target.');
    return;
  }
  console.log(`\nProblems (${problems.length}):`);
  for (const p of problems) console.log(`  [${p.severity}] ${p.message}\n      fix: ${p.fix}${p.operation ? ` (ferry guest fix: ${p.operation})` : ''}`);
}

function printReport(r: GuestReport): void {
  console.log(`Image ${r.image} (${r.format}), target ${r.target}, inspected in ${(r.durationMs / 1000).toFixed(1)} s`);
  console.log(`OS: ${r.os ? `${r.os.name} (from ${r.os.source})` : 'unknown'}`);
  console.log(`Partition table: ${r.partitionTable.kind}`);
  for (const f of r.filesystems) {
    console.log(
      `  ${(f.lv ? `${f.lv.vg}/${f.lv.name}` : String(f.partition)).padStart(2)}  ${(f.type ?? '-').padEnd(12)} UUID=${f.uuid ?? '-'}  LABEL=${f.label ?? '-'}${f.mountPoint ? `  on ${f.mountPoint}` : ''}`,
    );
  }
  if (r.lvm.note) console.log(`LVM: ${r.lvm.note}`);
  for (const vg of r.lvm.volumeGroups) {
    console.log(
      `Volume group ${vg.name}: ${(vg.size / 2 ** 20).toFixed(0)} MiB (${(vg.free / 2 ** 20).toFixed(0)} MiB free), extents of ${(vg.extentSize / 2 ** 20).toFixed(0)} MiB, PVs on partition(s) ${vg.physicalVolumes.map((p) => p.partition ?? '?').join(', ')}${vg.missingPvs ? `, ${vg.missingPvs} PV(s) on other disks` : ''}`,
    );
    for (const lv of vg.logicalVolumes) {
      const segs = lv.segments.map((s) => `${s.type} ${s.ranges.map((x) => `p${x.partition ?? '?'}:${x.first}-${x.last}`).join(' ')}`).join('; ');
      const fs = lv.filesystem
        ? `${lv.filesystem.type ?? '-'} UUID=${lv.filesystem.uuid ?? '-'}${lv.filesystem.mountPoint ? ` on ${lv.filesystem.mountPoint}` : ''}`
        : `not mapped: ${lv.notMappedBecause ?? 'unknown'}`;
      console.log(`  ${lv.path} (${lv.mapperPath}) ${(lv.size / 2 ** 20).toFixed(0)} MiB [${segs}]: ${fs}`);
    }
  }
  console.log('fstab:');
  for (const e of r.fstab) console.log(`  ${e.spec} ${e.mountPoint} ${e.type}: ${e.device.kind}, ${e.device.survives ? 'survives the move' : `does not survive (${e.device.why})`}`);
  for (const e of r.crypttab) console.log(`crypttab: ${e.name} ${e.source}: ${e.device.survives ? 'survives' : 'does not survive'}`);
  console.log('Bootloader:');
  for (const f of r.bootloader.files) {
    for (const e of f.entries) console.log(`  ${f.path} [${e.title}] root=${e.root ?? '-'} resume=${e.resume ?? '-'} console=${e.consoles.join(',') || '-'}`);
  }
  const dg = r.bootloader.defaultGrub;
  if (dg)
    console.log(`  /etc/default/grub: GRUB_CMDLINE_LINUX="${dg.cmdlineLinux}" GRUB_CMDLINE_LINUX_DEFAULT="${dg.cmdlineLinuxDefault}"${dg.disableLinuxUuid ? ' GRUB_DISABLE_LINUX_UUID=true' : ''}`);
  console.log(`Kernels (initramfs by ${r.initramfsTool ?? 'unknown'}):`);
  for (const k of r.kernels) {
    const mods = k.initramfsModules
      ? Object.entries(k.initramfsModules)
          .map(([d, has]) => `${d}${has ? '+' : '-'}`)
          .join(' ')
      : (k.initramfsError ?? 'no initramfs');
    console.log(
      `  ${k.version}: ${Object.entries(k.drivers)
        .map(([d, p]) => `${d}=${p}`)
        .join(' ')}; initramfs ${k.initramfs ?? '-'}: ${mods}`,
    );
  }
  console.log('Network:');
  for (const c of r.network.configs) console.log(`  ${c.file}: ${c.interface ?? '?'} ${c.method} ${c.addresses.join(' ')}${c.gateway ? ` via ${c.gateway}` : ''}${c.mac ? ` MAC ${c.mac}` : ''}`);
  for (const b of r.network.nameBindings) console.log(`  ${b.file}: MAC ${b.mac} -> ${b.name}`);
  console.log(`  predictable interface names: ${r.network.predictableNames ? 'on' : 'off'}`);
  console.log(`Console: kernel ${r.console.kernel.join(', ') || 'default'}; gettys ${r.console.gettys.join(', ') || 'default'}`);
  printProblems(r.problems);
}

function printFix(r: FixResult): void {
  for (const c of r.changes) {
    console.log(`== ${c.operation}: ${c.kind === 'command' ? `run ${c.diff}` : c.kind === 'remove' ? c.diff : `${c.file} (original kept as ${c.backup})`}`);
    if (c.kind === 'edit') console.log(c.diff.trimEnd());
  }
  console.log(`\n${r.dryRun ? 'Dry run: nothing changed' : `${r.changes.length} change(s) made`} in ${(r.durationMs / 1000).toFixed(1)} s.`);
  if (r.remaining.length > 0) printProblems(r.remaining);
}

async function report(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (e) {
    console.error(`ferry: ${formatError(e)}`);
    process.exitCode = e instanceof FerryError && e.code === 'USAGE' ? 2 : 1;
  }
}

export function register(program: Command): void {
  const guest = program.command('guest').description("inspect and fix a stopped guest's disk for its new hypervisor");

  guest
    .command('inspect <image>')
    .description('report partitions, filesystems, OS, fstab, bootloader, kernels, network and console, and what breaks on the target (IMAGE: file, block device or HOST:PATH)')
    .option('--json', 'print the report as JSON (top-level "problems" array)')
    .option('--for <target>', 'target hypervisor', 'kvm-virtio')
    .option('--nic-mac <mac>', "a MAC the guest's NIC will have on the target; configuration bound to it is fine (repeatable)", collect, [])
    .action((image: string, o: { json?: boolean; for: string; nicMac: string[] }) =>
      report(async () => {
        const bad = o.nicMac.find((m) => !isMac(m));
        if (bad) throw new FerryError('USAGE', `Cannot read --nic-mac "${bad}"`, { hint: 'write it as 52:54:00:12:34:56' });
        const at = locate(image);
        const params = { image: at.path, target: o.for, targetMacs: o.nicMac };
        const r = at.host ? await onHost(at.host, program.opts<{ hosts?: string }>().hosts, (c) => c.call('guest.inspect', params)) : await inspectImage(at.path, params);
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else printReport(r);
      }),
    );

  guest
    .command('fix <image>')
    .description(`apply the fixes (${FIX_OPERATIONS.map((f) => f.name).join(', ')}); each change shown as a diff, originals kept as FILE.ferry-orig`)
    .option('--for <target>', 'target hypervisor', 'kvm-virtio')
    .option('--mac <old=new>', 'the NIC with MAC OLD now has NEW: move bindings to it (repeatable)', collect, [])
    .option('--dry-run', 'show the changes, make none')
    .option('--restore-uuids <from-image>', "take the filesystems' old UUIDs from this image (the source disk)")
    .option('--uuid-map <old=new>', 'a filesystem that had UUID OLD now has NEW (repeatable)', collect, [])
    .option('--uuid-mode <mode>', 'restore: give filesystems their old UUIDs back; rewrite: point references at the new ones', 'restore')
    .option('--skip <operation>', 'skip a fix operation (repeatable)', collect, [])
    .option('--json', 'print the result as JSON')
    .action((image: string, o: { for: string; mac: string[]; dryRun?: boolean; restoreUuids?: string; uuidMap: string[]; uuidMode: string; skip: string[]; json?: boolean }) =>
      report(async () => {
        if (o.uuidMode !== 'restore' && o.uuidMode !== 'rewrite') {
          throw new FerryError('USAGE', `Unknown --uuid-mode "${o.uuidMode}"`, { hint: 'use restore or rewrite' });
        }
        const unknown = o.skip.filter((s) => !FIX_OPERATIONS.some((f) => f.name === s));
        if (unknown.length) throw new FerryError('USAGE', `Unknown fix operation "${unknown[0]}"`, { hint: `operations: ${FIX_OPERATIONS.map((f) => f.name).join(', ')}` });
        const params: GuestFixParams = {
          image,
          target: o.for,
          dryRun: o.dryRun === true,
          macs: pairs(o.mac, '--mac', isMac),
          uuidMap: pairs(o.uuidMap, '--uuid-map', (s) => /^[0-9a-f-]{4,}$/i.test(s)),
          restoreUuidsFrom: o.restoreUuids,
          uuidMode: o.uuidMode,
          skip: o.skip,
        };
        const at = locate(image);
        const r = at.host
          ? await onHost(at.host, program.opts<{ hosts?: string }>().hosts, (c) => c.call('guest.fix', { ...params, image: at.path }))
          : await fixImage(at.path, { ...params, macs: new Map(params.macs), uuidMap: new Map(params.uuidMap) });
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else printFix(r);
      }),
    );
}
