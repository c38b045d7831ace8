/**
 * What a migration needs from a hypervisor, whatever it is. The flow (which
 * phases, in which order, what is checked for every hypervisor, which disks
 * go where and how they are made) belongs to src/migrate/; a driver supplies
 * the steps only: describe a VM, check the target for what only it knows,
 * prepare the incoming side, move the disks and the memory, switch over,
 * stop the source, and settle after a failure.
 */
import type { AgentClient } from '../hosts/agent-client.js';
import type { ImageInfo } from '../storage/image-info.js';
import type { MigrationListener } from './progress.js';

export interface VmDisk {
  /** The hypervisor's name for the disk (QEMU: the drive id; libvirt: the target dev). */
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
  /**
   * What the hypervisor opens: a file, a block device, a volume of a storage
   * pool, or storage it reaches over the network (NBD, RBD, iSCSI, Gluster),
   * whose `path` is then its URL and which both hosts reach alike.
   */
  kind?: 'file' | 'block' | 'volume' | 'network';
  /** A volume disk's pool and volume, by which the hypervisor names it (`path` is where the volume is). */
  volume?: { pool: string; name: string };
}

/** The disk's cache mode as QEMU and libvirt name it (cache=...). */
export function cacheModeOf(disk: Pick<VmDisk, 'cache'>): string {
  if (disk.cache.noFlush) return 'unsafe';
  if (disk.cache.direct) return disk.cache.writeback ? 'none' : 'directsync';
  return disk.cache.writeback ? 'writeback' : 'writethrough';
}

export interface VmInfo {
  name: string;
  driver: string;
  pid: number;
  /** running, paused, inmigrate, postmigrate, shut off, ... */
  state: string;
  memoryBytes: number;
  disks: VmDisk[];
  hypervisorVersion: string;
  /** Files besides disks the VM needs on the target (kernel, initrd, firmware). */
  auxFiles: string[];
  /** Files besides disks that are the VM's own (a UEFI variable store): carried to the target, at the same path. */
  ownFiles?: VmOwnFile[];
  /** The guest's CPU: a model name, or host-passthrough and the like. */
  cpuModel?: string;
  /** What its network interfaces attach to: "network:NAME" (a libvirt network) or "bridge:NAME". */
  attachments?: string[];
}

export interface VmOwnFile {
  path: string;
  /** What it is, as a message names it ("UEFI variable store"). */
  what: string;
  /** A live move's hypervisor carries it in its own stream (a TPM's state): ferry copies it only for a VM that is off. */
  carriedLive?: boolean;
  /** The file it is first made from (a firmware's variable store template): a copy of it at the target path holds nothing of the VM's. */
  template?: string;
  /** A directory that is the VM's alone and holds it, with what its program keeps beside it (swtpm's lock): --delete-source removes it whole. */
  ownDir?: string;
}

/** How one disk moves: decided by the migration's plan (src/migrate/plan.ts), carried out by the driver. */
export interface DiskPlan {
  disk: VmDisk;
  index: number;
  targetPath: string;
  targetFormat: string;
  /** ferry creates the target image (and removes it on rollback). */
  create: boolean;
  /** top: only what the source's top image holds crosses (a new target reads as zeros, or the base is on both hosts). */
  sync: 'full' | 'top';
  /** The backing file the new target image gets, when the base is already there. */
  base?: ImageInfo;
  /** The target is a block device that exists (an LV, a partition): written into, never made. */
  targetDevice?: boolean;
  /** The target is an LVM logical volume ferry makes (or an interrupted move of this VM made) at targetPath, /dev/VG/LV. */
  targetLv?: { vg: string; lv: string; sizeBytes: number };
  /** The target already sees this very file (shared storage): nothing to make or copy. */
  shared?: boolean;
  /** A read-only image the target already holds, byte for byte (an ISO library on both hosts): used as it is, neither made, copied nor removed. */
  present?: boolean;
  /** An earlier, interrupted offline move made this target image: the copy continues into it. */
  resume?: boolean;
  /** A warm move's pre-copy filled this target image: the cut-over only carries what changed since. */
  precopied?: boolean;
}

/** Whether the move carries this disk's bytes to the target: not when the target sees the same file, or holds the same read-only image already. */
export function crossesToTarget(p: DiskPlan): boolean {
  return !p.shared && !p.present;
}

/** How the move should go, as the user asked. */
export interface TransferSettings {
  /** Bytes per second for disks and RAM together; undefined: unlimited. */
  bandwidthBytes?: number;
  /** Longest pause the hypervisor may plan for the switch-over. */
  maxDowntimeMs?: number;
  /** Let the hypervisor throttle a guest that dirties RAM faster than the link. */
  autoConverge?: boolean;
  /**
   * write-blocking (default): a guest write completes once both hosts have
   * it, so the mirror never falls behind and the pause is shorter;
   * background: guest writes do not wait for the network.
   */
  mirrorMode?: 'write-blocking' | 'background';
  /** Where the hypervisor keeps a definition (libvirt): leave it, shut off, on the source. */
  keepSourceDefinition?: boolean;
  /** libvirt: define on the target, value included, each secret the VM's network disks log in with that the target lacks. */
  copySecrets?: boolean;
  /** A warm move whose cut-over boots the guest afresh on the target: no running state crosses. */
  reboot?: boolean;
}

/** Where steps write down what they did, so that a failure can be undone from the journal and the hosts' records. */
export interface StepJournal {
  readonly id: string;
  record(step: string, data?: Record<string, unknown>): void;
}

export interface StepContext {
  vmName: string;
  source: AgentClient;
  target: AgentClient;
  settings: TransferSettings;
  signal: AbortSignal;
  listener: MigrationListener;
  journal: StepJournal;
}

export interface LiveStats {
  /** Guest pause: source stopped -> target resumed. */
  downtimeMs?: number;
  /** The hypervisor's own downtime figure. */
  hypervisorDowntimeMs?: number;
  ramBytes: number;
  /** Disk bytes that crossed to the target. */
  diskBytes: number;
  /** Of the ranges the copy covered, bytes that were zeros and crossed as write-zeroes requests (known under a cap). */
  diskZeroBytes?: number;
  /** A warm move: the bytes of the last pass, made while the guest was paused. */
  lastPassBytes?: number;
}

/** Who owns the VM after a failed migration was settled. */
export interface Settlement {
  /**
   * committed: the target; aborted or none: the source (`source` says in
   * what state: a source whose own process went away is still aborted);
   * died: nobody, the target's process died after it had taken the VM over.
   */
  outcome: 'committed' | 'aborted' | 'none' | 'died' | (string & {});
  source: string;
  /** What went otherwise than planned while settling, for the journal. */
  notes?: string[];
  /** How long each side took to settle, for the journal. */
  ms?: Record<string, number>;
}

/** A live migration's steps, in the order src/migrate/live.ts runs them. */
export interface LiveSteps {
  readonly stats: LiveStats;
  /** Set at the commit point: from then on the target owns the VM. */
  readonly committed: boolean;
  /** The agents the migration ended with (new ones if it had to start them again). */
  readonly agents: AgentClient[];
  /** Finds the VM on the source. */
  describe(): Promise<VmInfo>;
  /** What only this hypervisor can tell about the target: versions, names taken, CPU, networks. Runs beside the plan's checks. */
  checkTarget(vm: VmInfo): Promise<void>;
  /**
   * The hypervisor copies no read-only disk (libvirt refuses to mirror one):
   * ferry copies each before the move, which is exact since none can change.
   */
  readonly leavesReadOnlyDisks?: boolean;
  /** What only this hypervisor must judge of the plan before anything is made (libvirt: a volume's pool on the target). */
  checkPlans?(plans: readonly DiskPlan[]): Promise<void>;
  /** After --delete-source removed these disks on the source: what the hypervisor must learn of it (libvirt: its pools read again). */
  sourceDisksDeleted?(plans: readonly DiskPlan[]): Promise<void>;
  /** Opens the target's record, before anything is made there. */
  beginTarget(): Promise<void>;
  /** Lists files (and LVs, /dev/VG/LV) in the target's record before they are made, so that whoever settles removes them. */
  claimTargetFiles(paths: string[], lvs?: ReadonlyArray<{ vg: string; lv: string }>): Promise<void>;
  /** The incoming VM on the target, its disks made (by the plan) and ready to receive. */
  prepareIncoming(plans: readonly DiskPlan[]): Promise<void>;
  /** Disks copied and kept in step with the guest's writes. */
  copyDisks(): Promise<void>;
  /** RAM copied up to the pause. */
  copyMemory(): Promise<void>;
  /** The pause: the last changes cross and the target takes the VM over (the commit point). */
  switchOver(): Promise<void>;
  /** The target owns the VM: the source stops. */
  finish(): Promise<void>;
  /** Brings the VM to one owner after any failure. */
  settle(): Promise<Settlement>;
  /** Whether the VM runs, and is not paused, on the agent's host (the source after a failure). */
  runsOn(agent: AgentClient): Promise<boolean>;
  /** Whether the hypervisor still has the VM at all on the agent's host. */
  existsOn(agent: AgentClient): Promise<boolean>;
  /** Where the source's hypervisor writes what it says about the VM (why its QEMU ended, above all), when it does. */
  hypervisorLog(): string | undefined;
}

/** The source QEMU's monitor, whoever runs that QEMU: a warm move's pre-copy drives its dirty bitmaps and block jobs. */
export interface BlockMonitor {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
}

/**
 * A warm move's steps. The pre-copy (src/migrate/warm.ts, with the passes of
 * drivers/block-passes.ts) runs on the source's QEMU through the monitor
 * the driver gives; the target's images are served over NBD meanwhile. The
 * cut-over then runs as a live move's steps whose disks are already there:
 * copyDisks catches up with the guest's latest writes, and the switch-over
 * carries the last of them while the guest is paused.
 */
export interface WarmSteps extends LiveSteps {
  /** The source QEMU's monitor, once describe() found the VM. */
  monitor(): BlockMonitor;
  /** The monitor's name for each disk's node (the one the guest writes through), by device. */
  diskNodes(): Map<string, string>;
  /**
   * --reboot: the guest powers off when asked (ACPI), or with forceOff is
   * paused after the time-out; either way its hypervisor keeps its disks open
   * for the last pass.
   */
  powerOff?(options: ShutdownOptions): Promise<void>;
  /** Undoes powerOff: the guest runs on the source again (resumed, or booted again if it had shut down). */
  powerOn?(): Promise<void>;
  /** The target is about to start the VM: from here nothing may run the stopped guest on the source again. */
  releaseSource?(): Promise<void>;
}

/** How a running VM is powered off for a cold move. */
export interface ShutdownOptions {
  /** How long the guest gets to power off when asked (ACPI). */
  timeoutMs: number;
  /** After that, cut its power (its disks are closed cleanly by the hypervisor); else refuse. */
  forceOff: boolean;
  /**
   * The target already owns the VM (a warm --reboot's finish stops the older
   * copy): the stop is final, and no agent may start this copy again.
   */
  final?: boolean;
}

/**
 * A cold move's steps: the VM does not run while its disks are copied (the
 * migration copies them with the sync engine); it is then made on the
 * target (libvirt: defined with the planned paths; QEMU: its command line
 * with them) and started there.
 */
export interface ColdSteps {
  describe(): Promise<VmInfo>;
  checkTarget(vm: VmInfo): Promise<void>;
  /** As LiveSteps.checkPlans. */
  checkPlans?(plans: readonly DiskPlan[]): Promise<void>;
  /** As LiveSteps.sourceDisksDeleted. */
  sourceDisksDeleted?(plans: readonly DiskPlan[]): Promise<void>;
  /**
   * Powers the VM off on the source; undone by startSource. Until
   * releaseSource, the source's agent alone starts it again if the
   * controller goes away.
   */
  stopSource(options: ShutdownOptions): Promise<void>;
  /**
   * Undoes stopSource, also one that failed or lost its agent once the
   * power-off was asked for: the VM runs again on the source, started by
   * the one agent that holds it (a new agent taking over from a dead one),
   * or here once released.
   */
  startSource(): Promise<void>;
  /** The target is about to start the VM: the source's agent must no longer start it again by itself. */
  releaseSource(): Promise<void>;
  /** Makes the VM on the target with the planned paths, not started; undone by undefineTarget. */
  defineTarget(plans: readonly DiskPlan[]): Promise<void>;
  undefineTarget(): Promise<void>;
  startTarget(): Promise<void>;
  /** The VM's state on the target once started, in the hypervisor's words (`running` when all is well). */
  targetState?(): Promise<string>;
  /** Removes what defines the VM on the source (libvirt's definition, its XML journaled first), unless asked to keep it. */
  undefineSource(): Promise<void>;
}

/** What `ferry recover` found of an unfinished migration and did with it. */
export interface Recovery {
  /** What each host held of it, in the driver's words; null: nothing. */
  found: { source: string | null; target: string | null };
  settlement?: Settlement;
}

/** A VM a driver's hypervisor has on a host. */
export interface FoundVm {
  /** running, paused, shut off, ... */
  state: string;
  /** What the driver learned in finding it, for its live steps to use rather than ask again; opaque to the flow. */
  readonly details?: unknown;
}

export interface HypervisorDriver {
  readonly name: 'qemu' | 'libvirt';
  listVms(host: AgentClient): Promise<VmInfo[]>;
  /** `found`: what find() answered for this VM moments before, when nothing has been done to it since. */
  live(context: StepContext, found?: FoundVm): LiveSteps;
  /** Cold moves: the VM powered off, its disks copied, made and started on the target. */
  cold?(context: StepContext): ColdSteps;
  /** Warm moves: disks pre-copied while the VM runs, then a short cut-over. */
  warm?(context: StepContext): WarmSteps;
  /** The VM on the host, undefined when its hypervisor has no such VM there (or does not run there). */
  find(host: AgentClient, vmName: string): Promise<FoundVm | undefined>;
  /** Brings migration `id`, which its journal left unfinished, to one owner from what the hosts hold. */
  recover(id: string, vmName: string, source: AgentClient, target: AgentClient, journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): Promise<Recovery>;
}
