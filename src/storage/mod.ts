/**
 * Disks on a host as sync and migration endpoints: what a path holds
 * (inspect), its guest-visible bytes as a raw file (open, FUSE export for
 * qcow2 and other formats), its allocation map, creation (images, LVs) and
 * who is using it (mounts, loop devices, running VMs).
 */
export { inspectDisk, createImage, type DiskInfo, type DiskKind } from './image-info.js';
export { openDisk, type DiskEndpoint } from './endpoint.js';
export { dataRanges, blocksWithData, parseMap, type ByteRange } from './allocation.js';
export { exportAsRaw, type RawExport } from './fuse-export.js';
export { findDiskUsers, describeUsers, hasRunningVm, isBusy, type DiskUsers } from './usage.js';
export { parseLvPath, createLv, deviceMapperAvailable, type LvName } from './lvm.js';
