/**
 * The libvirt domain XML of a lab VM: the same machine labVmArgv starts as a
 * plain QEMU process (a PC, the test guest's kernel, one virtio disk per
 * image, the serial console appended to a file), defined for libvirtd.
 */

export interface LabDomainOptions {
  name: string;
  kernel: string;
  initrd?: string;
  /** The whole kernel command line. */
  append: string;
  /** "kvm" gives the host's CPU (host-passthrough); "tcg" a named model that CPU checks can compare. */
  accel: 'kvm' | 'tcg';
  memoryMiB?: number;
  /** In the guest's order (vda, vdb, ...); one with `volume` is named by its storage pool and volume. */
  disks: ReadonlyArray<{
    path: string;
    format: string;
    volume?: { pool: string; name: string };
    nbd?: { host: string; port: number; name: string };
    /** A LUN of an iSCSI target; with `user`, logged in to with CHAP, the password in the libvirt secret whose usage is the target's IQN. */
    iscsi?: { host: string; port: number; target: string; lun: number; user?: string };
  }>;
  cache?: 'none' | 'writeback' | 'unsafe';
  /** File that receives the serial console, appended to (as labVmArgv does). */
  serialLog: string;
  /** The CPU model under TCG (default qemu64). */
  cpuModel?: string;
  /** The emulator libvirt runs (default: its own choice for the arch and machine). */
  emulator?: string;
  /** Boot through UEFI firmware (read-only code, and a variable store of the domain's own made from `template`). */
  uefi?: { loader: string; template: string; nvram: string };
  /** An emulated TPM 2.0 (swtpm), whose state libvirt keeps under the domain's UUID. */
  tpm?: boolean;
}

/** Escapes text for an XML attribute value or element content. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** vda, vdb, ..., vdz, vdaa: the guest's name of virtio disk `index`, as Linux numbers them. */
export function virtioDiskName(index: number): string {
  let suffix = '';
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) suffix = String.fromCharCode(97 + ((n - 1) % 26)) + suffix;
  return `vd${suffix}`;
}

/**
 * A domain without network, USB, balloon or display: nothing that the move
 * of a lab VM between lab hosts would have to carry besides CPU, RAM, disks
 * and the console.
 */
export function labDomainXml(vm: LabDomainOptions): string {
  const x = escapeXml;
  const cpu = vm.accel === 'kvm' ? `<cpu mode='host-passthrough'/>` : `<cpu mode='custom' match='exact'><model fallback='forbid'>${x(vm.cpuModel ?? 'qemu64')}</model></cpu>`;
  // A device (an LV at /dev/VG/LV) is a block disk: libvirt would open it as a regular file otherwise.
  const source = (d: LabDomainOptions['disks'][number]): string => {
    if (d.nbd) return `      <source protocol='nbd' name='${x(d.nbd.name)}'><host name='${x(d.nbd.host)}' port='${d.nbd.port}'/></source>`;
    if (d.iscsi) {
      const { host, port, target, lun, user } = d.iscsi;
      const auth = user ? `<auth username='${x(user)}'><secret type='iscsi' usage='${x(target)}'/></auth>` : '';
      return `      <source protocol='iscsi' name='${x(target)}/${lun}'><host name='${x(host)}' port='${port}'/>${auth}</source>`;
    }
    if (d.volume) return `      <source pool='${x(d.volume.pool)}' volume='${x(d.volume.name)}'/>`;
    return `      <source ${d.path.startsWith('/dev/') ? 'dev' : 'file'}='${x(d.path)}'/>`;
  };
  const disks = vm.disks.map((d, i) =>
    [
      `    <disk type='${d.nbd || d.iscsi ? 'network' : d.volume ? 'volume' : d.path.startsWith('/dev/') ? 'block' : 'file'}' device='disk'>`,
      `      <driver name='qemu' type='${x(d.format)}' cache='${x(vm.cache ?? 'none')}' io='threads'/>`,
      source(d),
      `      <target dev='${virtioDiskName(i)}' bus='virtio'/>`,
      `    </disk>`,
    ].join('\n'),
  );
  return [
    `<domain type='${vm.accel === 'kvm' ? 'kvm' : 'qemu'}'>`,
    `  <name>${x(vm.name)}</name>`,
    `  <memory unit='MiB'>${vm.memoryMiB ?? 256}</memory>`,
    `  <vcpu>1</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc'>hvm</type>`,
    ...(vm.uefi ? [`    <loader readonly='yes' type='pflash'>${x(vm.uefi.loader)}</loader>`, `    <nvram template='${x(vm.uefi.template)}'>${x(vm.uefi.nvram)}</nvram>`] : []),
    `    <kernel>${x(vm.kernel)}</kernel>`,
    ...(vm.initrd ? [`    <initrd>${x(vm.initrd)}</initrd>`] : []),
    `    <cmdline>${x(vm.append)}</cmdline>`,
    `  </os>`,
    `  <features><acpi/></features>`,
    `  ${cpu}`,
    `  <devices>`,
    ...(vm.emulator ? [`    <emulator>${x(vm.emulator)}</emulator>`] : []),
    ...disks,
    `    <serial type='file'>`,
    `      <source path='${x(vm.serialLog)}' append='on'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    ...(vm.tpm ? [`    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>`] : []),
    `    <controller type='usb' model='none'/>`,
    `    <memballoon model='none'/>`,
    `  </devices>`,
    `</domain>`,
    '',
  ].join('\n');
}
