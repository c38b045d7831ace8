/**
 * What the migration needs from a hypervisor, whatever it is. QEMU is the
 * first driver; libvirt and Xen fit behind the same shapes.
 */
import type { AgentClient } from '../hosts/agent-client.js';
import type { ImageInfo } from '../storage/image-info.js';

export interface VmDisk {
  /** The hypervisor's name for the disk (QEMU: the drive id). */
  device: string;
  path: string;
  format: string;
  virtualSize: number;
  /** Backing chain below the top image, nearest first. */
  backingChain: ImageInfo[];
  /** Bytes the top image holds on disk. */
  allocatedSize?: number;
  cache: { writeback: boolean; direct: boolean; noFlush: boolean };
  readOnly: boolean;
}

export interface VmInfo {
  name: string;
  driver: string;
  pid: number;
  /** running, paused, inmigrate, postmigrate, ... */
  state: string;
  memoryBytes: number;
  disks: VmDisk[];
  hypervisorVersion: string;
  /** Files besides disks the VM needs on the target (kernel, initrd, firmware). */
  auxFiles: string[];
}

export interface HypervisorDriver {
  readonly name: string;
  listVms(host: AgentClient): Promise<VmInfo[]>;
  findVm(host: AgentClient, name: string): Promise<VmInfo>;
}
