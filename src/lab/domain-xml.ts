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
  /** In the guest's order (vda, vdb, ...). */
  disks: ReadonlyArray<{ path: string; format: string }>;
  cache?: 'none' | 'writeback' | 'unsafe';
  /** File that receives the serial console, appended to (as labVmArgv does). */
  serialLog: string;
  /** The CPU model under TCG (default qemu64). */
  cpuModel?: string;
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
  const disks = vm.disks.map((d, i) =>
    [
      `    <disk type='file' device='disk'>`,
      `      <driver name='qemu' type='${x(d.format)}' cache='${x(vm.cache ?? 'none')}' io='threads'/>`,
      `      <source file='${x(d.path)}'/>`,
      `      <target dev='${virtioDiskName(i)}' bus='virtio'/>`,
      `    </disk>`,
    ].join('\n'),
  );
  return [
    vm.accel === 'kvm' ? `<domain type='kvm'>` : `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`,
    `  <name>${x(vm.name)}</name>`,
    `  <memory unit='MiB'>${vm.memoryMiB ?? 256}</memory>`,
    `  <vcpu>1</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc'>hvm</type>`,
    `    <kernel>${x(vm.kernel)}</kernel>`,
    ...(vm.initrd ? [`    <initrd>${x(vm.initrd)}</initrd>`] : []),
    `    <cmdline>${x(vm.append)}</cmdline>`,
    `  </os>`,
    `  <features><acpi/></features>`,
    `  ${cpu}`,
    `  <devices>`,
    ...disks,
    `    <serial type='file'>`,
    `      <source path='${x(vm.serialLog)}' append='on'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <controller type='usb' model='none'/>`,
    `    <memballoon model='none'/>`,
    `  </devices>`,
    ...(vm.accel === 'tcg' ? [tcgRam(vm.memoryMiB ?? 256)] : []),
    `</domain>`,
    '',
  ].join('\n');
}

/**
 * Under TCG the guest's RAM as labVmMemory gives a plain lab VM, 8 KiB
 * short of whole MiB: QEMU before 9.0 loses a TCG guest's stores while it
 * migrates a RAM block of whole 256 KiB chunks over several passes, and
 * the guest crashes after the move. libvirt rounds <memory> to whole MiB,
 * so QEMU is given its own RAM backend through libvirt's passthrough (the
 * definition carries it to the target, and libvirt's own backend stays
 * unused).
 */
function tcgRam(memoryMiB: number): string {
  const size = `${memoryMiB * 1024 - 8}k`;
  const args = ['-object', `memory-backend-ram,id=ferry-lab.ram,size=${size}`, '-machine', 'memory-backend=ferry-lab.ram', '-m', size];
  return `  <qemu:commandline>${args.map((a) => `<qemu:arg value='${a}'/>`).join('')}</qemu:commandline>`;
}
