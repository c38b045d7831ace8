/**
 * The libvirt driver's building blocks, controller side: a domain's XML read
 * and edited for a move, virsh's output read, a domain described for the
 * migration. The agent's methods live in host/handlers.ts (libvirtHandlers).
 */
export {
  parseDomainXml,
  mapDiskSources,
  definableDomainXml,
  domainCpuXml,
  type DomainDescription,
  type DomainDisk,
  type DomainInterface,
  type DomainCpu,
  type DomainCpuFeature,
  type DomainOs,
  type DomainGraphics,
  type DiskBacking,
  type DiskMove,
} from './domain-xml.js';
export {
  parseDomJobInfo,
  parseDomJobInfoRaw,
  parseNameList,
  parseDomState,
  parseVersion,
  parseCapabilities,
  parseCpuCompare,
  classifyVirshFailure,
  type DomainJobInfo,
  type DomainState,
  type LibvirtVersion,
  type HostCapabilities,
  type CpuComparison,
  type VirshFailure,
  type VirshFailureKind,
} from './virsh-output.js';
export { describeDomain, type DomainVmInfo } from './inspect.js';
export type { LibvirtDomain, LibvirtNetwork, LibvirtAvailability, CpuCheck } from './host/handlers.js';
export type { LinuxBridge } from './host/bridges.js';
