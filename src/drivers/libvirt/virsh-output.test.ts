import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../util/errors.js';
import {
  classifyVirshFailure,
  parseCapabilities,
  parseCpuCompare,
  parseDomJobInfo,
  parseDomJobInfoRaw,
  parseDomState,
  parseNameList,
  parsePoolTargetPath,
  parseQmpReply,
  parseVersion,
} from './virsh-output.js';
import {
  CAPABILITIES_XML,
  JOBINFO_COMPLETED_RAW,
  JOBINFO_COMPLETED_SOURCE,
  JOBINFO_COMPLETED_SOURCE_2,
  JOBINFO_COMPLETED_TARGET,
  JOBINFO_MIRRORING,
  JOBINFO_MIRRORING_RAW,
  JOBINFO_NONE,
  LIST_ALL_NAME,
  NET_LIST_ALL_NAME,
  VERSION_DAEMON,
} from './test-fixtures.js';

const MiB = 2 ** 20;

test('parseDomJobInfo reads a domain without a job', () => {
  assert.deepEqual(parseDomJobInfo(JOBINFO_NONE), { type: 'none', other: {} });
});

test('parseDomJobInfo reads a migration copying its disks: sizes in bytes, time in ms', () => {
  assert.deepEqual(parseDomJobInfo(JOBINFO_MIRRORING), {
    type: 'unbounded',
    operation: 'outgoing-migration',
    timeElapsedMs: 525,
    dataProcessed: 16 * MiB,
    dataRemaining: 304 * MiB,
    dataTotal: 320 * MiB,
    diskProcessed: 16 * MiB,
    diskRemaining: 304 * MiB,
    diskTotal: 320 * MiB,
    other: {},
  });
});

test('parseDomJobInfo reads a completed outgoing migration: memory, disks, pages, downtime', () => {
  const info = parseDomJobInfo(JOBINFO_COMPLETED_SOURCE);
  assert.equal(info.type, 'completed');
  assert.equal(info.operation, 'outgoing-migration');
  assert.equal(info.timeElapsedMs, 64689);
  assert.equal(info.timeElapsedNetMs, 64686);
  assert.equal(info.dataProcessed, Math.round(321.049 * MiB));
  assert.equal(info.dataRemaining, 0);
  assert.equal(info.memoryTotal, Math.round(68.688 * MiB));
  assert.equal(info.memoryBytesPerSecond, Math.round(5.613 * MiB));
  assert.equal(info.memoryDirtyPagesPerSecond, 0);
  assert.equal(info.memoryPageSize, 4096);
  assert.equal(info.memoryIteration, 3);
  assert.equal(info.memoryPostcopyRequests, 0);
  assert.equal(info.memoryConstantPages, 17358);
  assert.equal(info.memoryNormalPages, 230);
  assert.equal(info.memoryNormalBytes, 920 * 1024);
  assert.equal(info.diskTotal, 320 * MiB);
  assert.equal(info.diskRemaining, 0);
  assert.equal(info.downtimeMs, 36);
  assert.equal(info.downtimeNetMs, 33);
  assert.equal(info.setupTimeMs, 1);
  assert.deepEqual(info.other, {});
});

test('parseDomJobInfo reads the target side of a completed migration, which copied no disks itself', () => {
  const info = parseDomJobInfo(JOBINFO_COMPLETED_TARGET);
  assert.equal(info.operation, 'incoming-migration');
  assert.equal(info.diskTotal, undefined);
  assert.equal(info.downtimeMs, 38);
});

test('parseDomJobInfo keeps lines it does not know, and values it cannot read, as text', () => {
  const info = parseDomJobInfo(
    'Job type:         Failed      \nOperation:        Outgoing migration\nVFIO data transferred: 12.000 MiB\nTime elapsed:     soon\nError message:    operation failed: job was cancelled\n',
  );
  assert.equal(info.type, 'failed');
  assert.equal(info.errorMessage, 'operation failed: job was cancelled');
  assert.deepEqual(info.other, { 'VFIO data transferred': '12.000 MiB', 'Time elapsed': 'soon' });
  assert.equal(info.timeElapsedMs, undefined);
  assert.equal(parseDomJobInfo('Expected downtime: 300          ms\nAuto converge throttle: 20           %\nFile bandwidth:   1.500 GiB/s').downtimeMs, 300);
  assert.equal(parseDomJobInfo('Auto converge throttle: 20           %').autoConvergeThrottle, 20);
  assert.equal(parseDomJobInfo('File bandwidth:   1.500 GiB/s').diskBytesPerSecond, 1.5 * 2 ** 30);
});

test('parseDomJobInfoRaw reads --rawstats: the same fields, exact', () => {
  assert.deepEqual(parseDomJobInfoRaw(JOBINFO_MIRRORING_RAW), {
    type: 'unbounded',
    operation: 'outgoing-migration',
    timeElapsedMs: 1492,
    dataTotal: 335544320,
    dataProcessed: 150994944,
    dataRemaining: 184549376,
    memoryTotal: 0,
    memoryProcessed: 0,
    memoryRemaining: 0,
    memoryDirtyPagesPerSecond: 0,
    memoryIteration: 0,
    memoryPostcopyRequests: 0,
    diskTotal: 335544320,
    diskProcessed: 150994944,
    diskRemaining: 184549376,
    other: {},
  });
  const raw = parseDomJobInfoRaw(JOBINFO_COMPLETED_RAW);
  const text = parseDomJobInfo(JOBINFO_COMPLETED_SOURCE_2);
  assert.deepEqual(Object.keys(raw).sort(), Object.keys(text).sort(), 'both forms fill the same fields');
  for (const key of Object.keys(raw) as (keyof typeof raw)[]) {
    const [r, t] = [raw[key], text[key]];
    if (typeof r === 'number' && typeof t === 'number') assert.ok(Math.abs(r - t) <= Math.max(1, r * 0.001), `${key}: ${r} ~ ${t}`);
    else assert.deepEqual(r, t, key);
  }
  assert.equal(raw.memoryBytesPerSecond, 46916250);
  assert.equal(parseDomJobInfoRaw('Job type: 0\n\n').type, 'none');
});

test('parseNameList reads virsh list --all --name and net-list --all --name, without the trailing blank line', () => {
  assert.deepEqual(parseNameList(LIST_ALL_NAME), ['mini', 'web1']);
  assert.deepEqual(parseNameList(NET_LIST_ALL_NAME), ['ext', 'private']);
  assert.deepEqual(parseNameList('\n'), []);
});

test('parseDomState reads the state and, with --reason, why', () => {
  assert.deepEqual(parseDomState('running (booted)\n\n'), { state: 'running', reason: 'booted' });
  assert.deepEqual(parseDomState('shut off (migrated)\n'), { state: 'shut off', reason: 'migrated' });
  assert.deepEqual(parseDomState('shut off\n'), { state: 'shut off', reason: undefined });
  assert.deepEqual(parseDomState('in shutdown (user)'), { state: 'in shutdown', reason: 'user' });
});

test('parseVersion reads the library, daemon and hypervisor versions', () => {
  assert.deepEqual(parseVersion(VERSION_DAEMON), { library: '9.0.0', daemon: '9.0.0', hypervisor: 'QEMU', hypervisorVersion: '7.2.22' });
});

test('parseCapabilities reads the host UUID, architecture and CPU', () => {
  const caps = parseCapabilities(CAPABILITIES_XML);
  assert.equal(caps.uuid, '5a1c0a0e-0000-4000-8000-00000000000a');
  assert.equal(caps.arch, 'x86_64');
  assert.match(caps.cpuXml ?? '', /^<cpu>\s*<arch>x86_64<\/arch>\s*<model>Broadwell-noTSX-IBRS<\/model>[\s\S]*<\/cpu>$/);
  assert.throws(
    () => parseCapabilities('<capabilities><host/></capabilities>'),
    (e: unknown) => e instanceof FerryError && e.code === 'BAD_FORMAT',
  );
});

test('parseCpuCompare reads the verdicts of hypervisor-cpu-compare and cpu-compare', () => {
  const ok = { missingFeatures: [], forbiddenFeatures: [] };
  assert.deepEqual(parseCpuCompare({ stdout: 'CPU described in cpu.xml is identical to the CPU provided by hypervisor on the host\n\n', stderr: '' }), {
    verdict: 'identical',
    accepted: true,
    ...ok,
  });
  assert.deepEqual(parseCpuCompare({ stdout: 'The CPU provided by hypervisor on the host is a superset of CPU described in cpu.xml\n', stderr: '' }), {
    verdict: 'superset',
    accepted: true,
    ...ok,
  });
  assert.deepEqual(parseCpuCompare({ stdout: 'Host CPU is a superset of CPU described in cpu.xml\n', stderr: '' })?.verdict, 'superset');
  assert.deepEqual(parseCpuCompare({ stdout: 'CPU described in cpu.xml is incompatible with host CPU\n', stderr: '' }), { verdict: 'incompatible', accepted: false, ...ok });
});

test('parseCpuCompare names the missing features from the --error message', () => {
  const stderr =
    'error: Failed to compare hypervisor CPU with cpu-bad.xml\nerror: the CPU is incompatible with host CPU: Host CPU does not provide required features: pni, pclmuldq, vmx, avx512vnni, amx-tile\n';
  assert.deepEqual(parseCpuCompare({ stdout: '', stderr }), {
    verdict: 'incompatible',
    accepted: false,
    missingFeatures: ['pni', 'pclmuldq', 'vmx', 'avx512vnni', 'amx-tile'],
    forbiddenFeatures: [],
    message: 'Host CPU does not provide required features: pni, pclmuldq, vmx, avx512vnni, amx-tile',
  });
  assert.deepEqual(parseCpuCompare({ stdout: '', stderr: 'error: the CPU is incompatible with host CPU: Host CPU provides forbidden features: hle, rtm' })?.forbiddenFeatures, ['hle', 'rtm']);
  assert.equal(parseCpuCompare({ stdout: '', stderr: 'error: failed to connect to the hypervisor' }), undefined);
});

test('classifyVirshFailure tells the failures a handler answers differently, with libvirt words', () => {
  const cases: [string, string, string][] = [
    [
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
      'unreachable',
      "failed to connect to the hypervisor: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
    ],
    ["error: failed to get domain 'nosuch'", 'no-domain', "failed to get domain 'nosuch'"],
    [
      "error: Failed to destroy domain 'web1'\nerror: Requested operation is not valid: domain is not running",
      'not-running',
      "Failed to destroy domain 'web1': Requested operation is not valid: domain is not running",
    ],
    ["error: Failed to start domain 'mini'\nerror: Domain is already active", 'already-running', "Failed to start domain 'mini': Domain is already active"],
    [
      "error: Failed to define domain from mini.xml\nerror: operation failed: domain 'mini' already exists with uuid 30e94151-9ade-41ef-9518-590bcf44121c",
      'exists',
      "Failed to define domain from mini.xml: operation failed: domain 'mini' already exists with uuid 30e94151-9ade-41ef-9518-590bcf44121c",
    ],
    [
      "error: operation failed: domain 'mini' is already defined with uuid 30e94151-9ade-41ef-9518-590bcf44121c",
      'exists',
      "operation failed: domain 'mini' is already defined with uuid 30e94151-9ade-41ef-9518-590bcf44121c",
    ],
    [
      "error: Failed to start domain 'web1'\nerror: the CPU is incompatible with host CPU: Host CPU does not provide required features: vmx, pcid",
      'cpu-incompatible',
      "Failed to start domain 'web1': the CPU is incompatible with host CPU: Host CPU does not provide required features: vmx, pcid",
    ],
    [
      "error: Failed to start domain 'x'\nerror: Cannot access storage file '/nonexistent/x.qcow2' (as uid:0, gid:0): No such file or directory",
      'no-storage',
      "Failed to start domain 'x': Cannot access storage file '/nonexistent/x.qcow2' (as uid:0, gid:0): No such file or directory",
    ],
    ['error: Requested operation is not valid: no job is active on the domain', 'no-job', 'Requested operation is not valid: no job is active on the domain'],
    [
      "error: Failed to start domain 'web1'\nerror: Unable to open file: /var/log/libvirt/qemu/web1-serial.log: No such file or directory",
      'other',
      "Failed to start domain 'web1': Unable to open file: /var/log/libvirt/qemu/web1-serial.log: No such file or directory",
    ],
  ];
  for (const [stderr, kind, message] of cases) assert.deepEqual(classifyVirshFailure(stderr), { kind, message }, stderr);
});

test("parseQmpReply answers the return value and turns a QMP error into a FerryError with QEMU's message", () => {
  assert.deepEqual(parseQmpReply('query-block-jobs', '{"return":[],"id":"libvirt-412"}\n'), []);
  assert.throws(
    () => parseQmpReply('blockdev-del', '{"id":"libvirt-413","error":{"class":"GenericError","desc":"Node \'ferry-warm-nbd-0\' is busy"}}'),
    (e: unknown) => e instanceof FerryError && e.code === 'QMP_ERROR' && /blockdev-del.*ferry-warm-nbd-0' is busy/.test(e.message),
  );
});

test('parsePoolTargetPath reads where a pool keeps its volumes, from virsh pool-dumpxml', () => {
  const dir = `<pool type='dir'>
  <name>default</name>
  <uuid>0b0c6a8e-8f0a-4a1c-9d6e-2f4f5c1d2e3f</uuid>
  <capacity unit='bytes'>105088212992</capacity>
  <source>
  </source>
  <target>
    <path>/var/lib/libvirt/images</path>
    <permissions>
      <mode>0711</mode>
    </permissions>
  </target>
</pool>
`;
  assert.equal(parsePoolTargetPath(dir), '/var/lib/libvirt/images');
  const netfs = `<pool type='netfs'><name>nfs</name><source><host name='nas'/><dir path='/export/vm'/></source><target><path>/srv/vm</path></target></pool>`;
  assert.equal(parsePoolTargetPath(netfs), '/srv/vm', 'the mount point, not the export');
  assert.equal(parsePoolTargetPath('<pool type="rbd"><name>ceph</name></pool>'), undefined);
});
