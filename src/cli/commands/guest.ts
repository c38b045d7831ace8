/**
 * `ferry guest inspect|fix IMAGE`: offline inspection and fixes of a stopped
 * guest's disk, locally or on another host (HOST:PATH) through its agent.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError, formatError } from '../../util/errors.js';
import { formatMiB } from '../../util/units.js';
import type { GuestFixParams } from '../../agent/handlers/guest.js';
import { fixImage, FIX_OPERATIONS, inspectImage, type FixResult, type GuestReport, type Problem } from '../../guest/mod.js';
import { isMac } from '../../guest/network-config.js';
import { collect, connectHost } from '../context.js';

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

async function onHost<T>(program: Command, hostName: string, call: (agent: AgentClient) => Promise<T>): Promise<T> {
  const agent = await connectHost(program, hostName);
  try {
    return await call(agent);
  } finally {
    agent.close();
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

function printProblems(problems: Problem[]): void {
  if (problems.length === 0) {
    console.log('\nNo problems: the guest needs no fix for this target.');
    return;
  }
  console.log(`\nProblems (${problems.length}):`);
  for (const p of problems) console.log(`  [${p.severity}] ${p.message}\n      fix: ${p.fix}${p.operation ? ` (ferry guest fix: ${p.operation})` : ''}`);
}

function printReport(inspection: GuestReport): void {
  console.log(`Image ${inspection.image} (${inspection.format}), target ${inspection.target}, inspected in ${(inspection.durationMs / 1000).toFixed(1)} s`);
  console.log(`OS: ${inspection.os ? `${inspection.os.name} (from ${inspection.os.source})` : 'unknown'}`);
  console.log(`Partition table: ${inspection.partitionTable.kind}`);
  for (const f of inspection.filesystems) {
    console.log(
      `  ${(f.lv ? `${f.lv.vg}/${f.lv.name}` : String(f.partition)).padStart(2)}  ${(f.type ?? '-').padEnd(12)} UUID=${f.uuid ?? '-'}  LABEL=${f.label ?? '-'}${f.mountPoint ? `  on ${f.mountPoint}` : ''}`,
    );
  }
  if (inspection.lvm.note) console.log(`LVM: ${inspection.lvm.note}`);
  for (const vg of inspection.lvm.volumeGroups) {
    console.log(
      `Volume group ${vg.name}: ${formatMiB(vg.size, 0)} MiB (${formatMiB(vg.free, 0)} MiB free), extents of ${formatMiB(vg.extentSize, 0)} MiB, PVs on partition(s) ${vg.physicalVolumes.map((p) => p.partition ?? '?').join(', ')}${vg.missingPvs ? `, ${vg.missingPvs} PV(s) on other disks` : ''}`,
    );
    for (const lv of vg.logicalVolumes) {
      const segs = lv.segments.map((s) => `${s.type} ${s.ranges.map((x) => `p${x.partition ?? '?'}:${x.first}-${x.last}`).join(' ')}`).join('; ');
      const fs = lv.filesystem
        ? `${lv.filesystem.type ?? '-'} UUID=${lv.filesystem.uuid ?? '-'}${lv.filesystem.mountPoint ? ` on ${lv.filesystem.mountPoint}` : ''}`
        : `not mapped: ${lv.notMappedBecause ?? 'unknown'}`;
      console.log(`  ${lv.path} (${lv.mapperPath}) ${formatMiB(lv.size, 0)} MiB [${segs}]: ${fs}`);
    }
  }
  console.log('fstab:');
  for (const e of inspection.fstab) console.log(`  ${e.spec} ${e.mountPoint} ${e.type}: ${e.device.kind}, ${e.device.survives ? 'survives the move' : `does not survive (${e.device.why})`}`);
  for (const e of inspection.crypttab) console.log(`crypttab: ${e.name} ${e.source}: ${e.device.survives ? 'survives' : 'does not survive'}`);
  console.log('Bootloader:');
  for (const f of inspection.bootloader.files) {
    for (const e of f.entries) console.log(`  ${f.path} [${e.title}] root=${e.root ?? '-'} resume=${e.resume ?? '-'} console=${e.consoles.join(',') || '-'}`);
  }
  const defaultGrub = inspection.bootloader.defaultGrub;
  if (defaultGrub)
    console.log(
      `  /etc/default/grub: GRUB_CMDLINE_LINUX="${defaultGrub.cmdlineLinux}" GRUB_CMDLINE_LINUX_DEFAULT="${defaultGrub.cmdlineLinuxDefault}"${defaultGrub.disableLinuxUuid ? ' GRUB_DISABLE_LINUX_UUID=true' : ''}`,
    );
  console.log(`Kernels (initramfs by ${inspection.initramfsTool ?? 'unknown'}):`);
  for (const kernel of inspection.kernels) {
    const mods = kernel.initramfsModules
      ? Object.entries(kernel.initramfsModules)
          .map(([driver, has]) => `${driver}${has ? '+' : '-'}`)
          .join(' ')
      : (kernel.initramfsError ?? 'no initramfs');
    console.log(
      `  ${kernel.version}: ${Object.entries(kernel.drivers)
        .map(([driver, how]) => `${driver}=${how}`)
        .join(' ')}; initramfs ${kernel.initramfs ?? '-'}: ${mods}`,
    );
  }
  console.log('Network:');
  for (const c of inspection.network.configs)
    console.log(`  ${c.file}: ${c.interface ?? '?'} ${c.method} ${c.addresses.join(' ')}${c.gateway ? ` via ${c.gateway}` : ''}${c.mac ? ` MAC ${c.mac}` : ''}`);
  for (const b of inspection.network.nameBindings) console.log(`  ${b.file}: MAC ${b.mac} -> ${b.name}`);
  console.log(`  predictable interface names: ${inspection.network.predictableNames ? 'on' : 'off'}`);
  console.log(`Console: kernel ${inspection.console.kernel.join(', ') || 'default'}; gettys ${inspection.console.gettys.join(', ') || 'default'}`);
  printProblems(inspection.problems);
}

function printFix(result: FixResult): void {
  for (const c of result.changes) {
    console.log(`== ${c.operation}: ${c.kind === 'command' ? `run ${c.diff}` : c.kind === 'remove' ? c.diff : `${c.file} (original kept as ${c.backup})`}`);
    if (c.kind === 'edit') console.log(c.diff.trimEnd());
  }
  console.log(`\n${result.dryRun ? 'Dry run: nothing changed' : `${result.changes.length} change(s) made`} in ${(result.durationMs / 1000).toFixed(1)} s.`);
  if (result.remaining.length > 0) printProblems(result.remaining);
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
    .action((image: string, opts: { json?: boolean; for: string; nicMac: string[] }) =>
      report(async () => {
        const bad = opts.nicMac.find((m) => !isMac(m));
        if (bad) throw new FerryError('USAGE', `Cannot read --nic-mac "${bad}"`, { hint: 'write it as 52:54:00:12:34:56' });
        const at = locate(image);
        const params = { image: at.path, target: opts.for, targetMacs: opts.nicMac };
        const inspection = at.host ? await onHost(program, at.host, (agent) => agent.call('guest.inspect', params)) : await inspectImage(at.path, params);
        if (opts.json) console.log(JSON.stringify(inspection, null, 2));
        else printReport(inspection);
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
    .action((image: string, opts: { for: string; mac: string[]; dryRun?: boolean; restoreUuids?: string; uuidMap: string[]; uuidMode: string; skip: string[]; json?: boolean }) =>
      report(async () => {
        if (opts.uuidMode !== 'restore' && opts.uuidMode !== 'rewrite') {
          throw new FerryError('USAGE', `Unknown --uuid-mode "${opts.uuidMode}"`, { hint: 'use restore or rewrite' });
        }
        const unknown = opts.skip.filter((s) => !FIX_OPERATIONS.some((f) => f.name === s));
        if (unknown.length) throw new FerryError('USAGE', `Unknown fix operation "${unknown[0]}"`, { hint: `operations: ${FIX_OPERATIONS.map((f) => f.name).join(', ')}` });
        const params: GuestFixParams = {
          image,
          target: opts.for,
          dryRun: opts.dryRun === true,
          macs: pairs(opts.mac, '--mac', isMac),
          uuidMap: pairs(opts.uuidMap, '--uuid-map', (s) => /^[0-9a-f-]{4,}$/i.test(s)),
          restoreUuidsFrom: opts.restoreUuids,
          uuidMode: opts.uuidMode,
          skip: opts.skip,
        };
        const at = locate(image);
        const result = at.host
          ? await onHost(program, at.host, (agent) => agent.call('guest.fix', { ...params, image: at.path }))
          : await fixImage(at.path, { ...params, macs: new Map(params.macs), uuidMap: new Map(params.uuidMap) });
        if (opts.json) console.log(JSON.stringify(result, null, 2));
        else printFix(result);
      }),
    );
}
