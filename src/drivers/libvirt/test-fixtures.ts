/**
 * What libvirt 9.0 and its virsh print, captured from a private libvirtd
 * (Debian 12, QEMU 7.2, TCG) for the parsers' tests.
 */

/** `virsh dumpxml web1` of a shut-off domain: kernel boot, custom CPU with features, a qcow2 file disk with its backing chain given, a block disk, a pool volume, a CD-ROM, network and bridge interfaces, a serial log file. */
export const WEB1_INACTIVE_XML = `<domain type='qemu'>
  <name>web1</name>
  <uuid>fcbe96fd-97d4-4abb-a28d-11343e28e5d9</uuid>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/var/lib/libvirt/boot/vmlinuz-6.1</kernel>
    <initrd>/var/lib/libvirt/boot/initrd.img-6.1</initrd>
    <cmdline>console=ttyS0 root=/dev/vda1</cmdline>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='forbid'>Haswell-noTSX</model>
    <feature policy='require' name='vmx'/>
    <feature policy='disable' name='hle'/>
    <feature policy='optional' name='avx512f'/>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap'/>
      <source file='/var/lib/libvirt/images/web1.qcow2'/>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='/dev/vg0/web1-data'/>
      <target dev='vdb' bus='virtio'/>
      <shareable/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='vmpool' volume='data.qcow2'/>
      <target dev='vdc' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x08' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/debian-12.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <controller type='sata' index='0'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </controller>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='private'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:11:22:33'/>
      <source bridge='br0'/>
      <model type='e1000'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/web1-serial.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='file'>
      <source path='/var/log/libvirt/qemu/web1-serial.log'/>
      <target type='serial' port='0'/>
    </console>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <audio id='1' type='none'/>
    <video>
      <model type='cirrus' vram='16384' heads='1' primary='yes'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
    </memballoon>
  </devices>
</domain>

`;

/** `virsh dumpxml mini` while it runs (TCG): id, aliases, source indexes, the backing chain libvirt found, a dynamic seclabel. */
export const MINI_LIVE_XML = `<domain type='qemu' id='2'>
  <name>mini</name>
  <uuid>30e94151-9ade-41ef-9518-590bcf44121c</uuid>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact' check='full'>
    <model fallback='forbid'>qemu64</model>
    <feature policy='require' name='hypervisor'/>
    <feature policy='require' name='lahf_lm'/>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writeback'/>
      <source file='/var/lib/libvirt/images/mini.qcow2' index='3'/>
      <backingStore type='file' index='4'>
        <format type='qcow2'/>
        <source file='/var/lib/libvirt/images/base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='vmpool' volume='data.qcow2' index='2'/>
      <backingStore/>
      <target dev='vdb' bus='virtio'/>
      <alias name='virtio-disk1'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <alias name='ide0-1-0'/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <alias name='usb'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'>
      <alias name='pci.0'/>
    </controller>
    <controller type='ide' index='0'>
      <alias name='ide'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/>
    </controller>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:cc'/>
      <model type='virtio'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/mini-serial.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='file'>
      <source path='/var/log/libvirt/qemu/mini-serial.log'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <input type='mouse' bus='ps2'>
      <alias name='input0'/>
    </input>
    <input type='keyboard' bus='ps2'>
      <alias name='input1'/>
    </input>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <audio id='1' type='none'/>
    <video>
      <model type='cirrus' vram='16384' heads='1' primary='yes'/>
      <alias name='video0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </memballoon>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+0:+0</label>
    <imagelabel>+0:+0</imagelabel>
  </seclabel>
</domain>

`;

/** `virsh dumpxml --inactive mini` of the same running domain. */
export const MINI_INACTIVE_XML = `<domain type='qemu'>
  <name>mini</name>
  <uuid>30e94151-9ade-41ef-9518-590bcf44121c</uuid>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='allow'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='writeback'/>
      <source file='/var/lib/libvirt/images/mini.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='vmpool' volume='data.qcow2'/>
      <target dev='vdb' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
      <address type='drive' controller='0' bus='1' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <controller type='ide' index='0'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/>
    </controller>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:cc'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/mini-serial.log'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='file'>
      <source path='/var/log/libvirt/qemu/mini-serial.log'/>
      <target type='serial' port='0'/>
    </console>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <audio id='1' type='none'/>
    <video>
      <model type='cirrus' vram='16384' heads='1' primary='yes'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/>
    </memballoon>
  </devices>
</domain>

`;

/** `virsh capabilities`, its <host> part (the <guest> parts left out). */
export const CAPABILITIES_XML = `<capabilities>

  <host>
    <uuid>5a1c0a0e-0000-4000-8000-00000000000a</uuid>
    <cpu>
      <arch>x86_64</arch>
      <model>Broadwell-noTSX-IBRS</model>
      <vendor>Intel</vendor>
      <microcode version='1'/>
      <signature family='6' model='207' stepping='2'/>
      <counter name='tsc' frequency='2100000000' scaling='no'/>
      <topology sockets='1' dies='1' cores='2' threads='1'/>
      <maxphysaddr mode='emulate' bits='46'/>
      <feature name='vme'/>
      <feature name='ss'/>
      <feature name='ht'/>
      <feature name='osxsave'/>
      <feature name='f16c'/>
      <feature name='rdrand'/>
      <feature name='hypervisor'/>
      <feature name='arat'/>
      <feature name='tsc_adjust'/>
      <feature name='avx512f'/>
      <feature name='avx512dq'/>
      <feature name='avx512ifma'/>
      <feature name='clflushopt'/>
      <feature name='clwb'/>
      <feature name='avx512cd'/>
      <feature name='sha-ni'/>
      <feature name='avx512bw'/>
      <feature name='avx512vl'/>
      <feature name='avx512vbmi'/>
      <feature name='umip'/>
      <feature name='pku'/>
      <feature name='ospke'/>
      <feature name='avx512vbmi2'/>
      <feature name='gfni'/>
      <feature name='vaes'/>
      <feature name='vpclmulqdq'/>
      <feature name='avx512vnni'/>
      <feature name='avx512bitalg'/>
      <feature name='avx512-vpopcntdq'/>
      <feature name='la57'/>
      <feature name='rdpid'/>
      <feature name='bus-lock-detect'/>
      <feature name='cldemote'/>
      <feature name='movdiri'/>
      <feature name='movdir64b'/>
      <feature name='fsrm'/>
      <feature name='md-clear'/>
      <feature name='serialize'/>
      <feature name='tsx-ldtrk'/>
      <feature name='amx-bf16'/>
      <feature name='avx512-fp16'/>
      <feature name='amx-tile'/>
      <feature name='amx-int8'/>
      <feature name='stibp'/>
      <feature name='arch-capabilities'/>
      <feature name='ssbd'/>
      <feature name='avx-vnni'/>
      <feature name='avx512-bf16'/>
      <feature name='xsaveopt'/>
      <feature name='xsavec'/>
      <feature name='xgetbv1'/>
      <feature name='xsaves'/>
      <feature name='xfd'/>
      <feature name='pdpe1gb'/>
      <feature name='abm'/>
      <feature name='invtsc'/>
      <feature name='wbnoinvd'/>
      <feature name='ibpb'/>
      <feature name='ibrs'/>
      <feature name='amd-stibp'/>
      <feature name='amd-ssbd'/>
      <feature name='rdctl-no'/>
      <feature name='ibrs-all'/>
      <feature name='skip-l1dfl-vmentry'/>
      <feature name='mds-no'/>
      <feature name='pschange-mc-no'/>
      <feature name='tsx-ctrl'/>
      <pages unit='KiB' size='4'/>
      <pages unit='KiB' size='2048'/>
      <pages unit='KiB' size='1048576'/>
    </cpu>
    <power_management/>
    <iommu support='no'/>
    <migration_features>
      <live/>
      <uri_transports>
        <uri_transport>tcp</uri_transport>
        <uri_transport>rdma</uri_transport>
      </uri_transports>
    </migration_features>
    <topology>
      <cells num='1'>
        <cell id='0'>
          <memory unit='KiB'>23292116</memory>
          <pages unit='KiB' size='4'>5823029</pages>
          <pages unit='KiB' size='2048'>0</pages>
          <pages unit='KiB' size='1048576'>0</pages>
          <distances>
            <sibling id='0' value='10'/>
          </distances>
          <cpus num='2'>
            <cpu id='0' socket_id='0' die_id='0' core_id='0' siblings='0'/>
            <cpu id='1' socket_id='0' die_id='0' core_id='1' siblings='1'/>
          </cpus>
        </cell>
      </cells>
    </topology>
    <cache>
      <bank id='0' level='3' type='both' size='300' unit='MiB' cpus='0-1'/>
    </cache>
    <secmodel>
      <model>none</model>
      <doi>0</doi>
    </secmodel>
    <secmodel>
      <model>dac</model>
      <doi>0</doi>
      <baselabel type='kvm'>+0:+0</baselabel>
      <baselabel type='qemu'>+0:+0</baselabel>
    </secmodel>
  </host>

</capabilities>
`;

/** `virsh domjobinfo mini` with no job. */
export const JOBINFO_NONE = `Job type:         None        

`;

/** `virsh domjobinfo mini` during `virsh migrate --live --copy-storage-all`, while the disks are copied. */
export const JOBINFO_MIRRORING = `Job type:         Unbounded   
Operation:        Outgoing migration
Time elapsed:     525          ms
Data processed:   16.000 MiB
Data remaining:   304.000 MiB
Data total:       320.000 MiB
File processed:   16.000 MiB
File remaining:   304.000 MiB
File total:       320.000 MiB

`;

/** `virsh domjobinfo --completed mini` on the source after that migration. */
export const JOBINFO_COMPLETED_SOURCE = `Job type:         Completed   
Operation:        Outgoing migration
Time elapsed:     64689        ms
Time elapsed w/o network: 64686        ms
Data processed:   321.049 MiB
Data remaining:   0.000 B
Data total:       388.688 MiB
Memory processed: 1.049 MiB
Memory remaining: 0.000 B
Memory total:     68.688 MiB
Memory bandwidth: 5.613 MiB/s
Dirty rate:       0            pages/s
Page size:        4096         bytes
Iteration:        3           
Postcopy requests: 0           
File processed:   320.000 MiB
File remaining:   0.000 B
File total:       320.000 MiB
Constant pages:   17358       
Normal pages:     230         
Normal data:      920.000 KiB
Total downtime:   36           ms
Downtime w/o network: 33           ms
Setup time:       1            ms

`;

/** `virsh domjobinfo --completed mini` on the target after a migration. */
export const JOBINFO_COMPLETED_TARGET = `Job type:         Completed   
Operation:        Incoming migration
Time elapsed:     32584        ms
Time elapsed w/o network: 32580        ms
Data processed:   1.049 MiB
Data remaining:   0.000 B
Data total:       68.688 MiB
Memory processed: 1.049 MiB
Memory remaining: 0.000 B
Memory total:     68.688 MiB
Memory bandwidth: 9.988 MiB/s
Dirty rate:       0            pages/s
Page size:        4096         bytes
Iteration:        3           
Postcopy requests: 0           
Constant pages:   17358       
Normal pages:     230         
Normal data:      920.000 KiB
Total downtime:   38           ms
Downtime w/o network: 34           ms
Setup time:       0            ms

`;

/** `virsh domjobinfo --rawstats mini` while the disks are copied. */
export const JOBINFO_MIRRORING_RAW = `Job type: 2

operation: 5
time_elapsed: 1492
data_total: 335544320
data_processed: 150994944
data_remaining: 184549376
memory_total: 0
memory_processed: 0
memory_remaining: 0
memory_dirty_rate: 0
memory_iteration: 0
memory_postcopy_requests: 0
disk_total: 335544320
disk_processed: 150994944
disk_remaining: 184549376

`;

/** `virsh domjobinfo --completed --keep-completed --rawstats mini` on the source after a migration. */
export const JOBINFO_COMPLETED_RAW = `Job type: 3

operation: 5
time_elapsed: 4428
time_elapsed_net: 4426
downtime: 31
downtime_net: 29
setup_time: 1
data_total: 407568384
data_processed: 336628158
data_remaining: 0
memory_total: 72024064
memory_processed: 1083838
memory_remaining: 0
memory_bps: 46916250
memory_constant: 17358
memory_normal: 226
memory_normal_bytes: 925696
memory_dirty_rate: 0
memory_iteration: 2
memory_postcopy_requests: 0
memory_page_size: 4096
disk_total: 335544320
disk_processed: 335544320
disk_remaining: 0

`;

/** `virsh domjobinfo --completed --keep-completed mini`: the same job as JOBINFO_COMPLETED_RAW. */
export const JOBINFO_COMPLETED_SOURCE_2 = `Job type:         Completed   
Operation:        Outgoing migration
Time elapsed:     4428         ms
Time elapsed w/o network: 4426         ms
Data processed:   321.034 MiB
Data remaining:   0.000 B
Data total:       388.688 MiB
Memory processed: 1.034 MiB
Memory remaining: 0.000 B
Memory total:     68.688 MiB
Memory bandwidth: 44.743 MiB/s
Dirty rate:       0            pages/s
Page size:        4096         bytes
Iteration:        2           
Postcopy requests: 0           
File processed:   320.000 MiB
File remaining:   0.000 B
File total:       320.000 MiB
Constant pages:   17358       
Normal pages:     226         
Normal data:      904.000 KiB
Total downtime:   31           ms
Downtime w/o network: 29           ms
Setup time:       1            ms

`;

/** `virsh list --all`. */
export const LIST_ALL = ` Id   Name   State
-----------------------
 2    mini   running
 -    web1   shut off

`;

/** `virsh list --all --name`. */
export const LIST_ALL_NAME = `mini
web1

`;

/** `virsh net-list --all --name`. */
export const NET_LIST_ALL_NAME = `ext
private

`;

/** `virsh version --daemon`. */
export const VERSION_DAEMON = `Compiled against library: libvirt 9.0.0
Using library: libvirt 9.0.0
Using API: QEMU 9.0.0
Running hypervisor: QEMU 7.2.22
Running against daemon: 9.0.0

`;
