import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../hosts/agent-client.js';
import { FerryError } from '../../util/errors.js';
import { parseDomainXml } from './domain-xml.js';
import { sameHostUuidError } from './domains.js';
import type { Admission } from './host/handlers.js';
import type { DiskPlan } from '../driver.js';
import { askAdmission, checkPools, checkSecrets, judgeAdmission } from './target-checks.js';
import { parseSecretList } from './virsh-output.js';

/** A target host's agent that records what it is asked and answers `admission`. */
function target(admission: Admission): AgentClient & { asked: unknown[] } {
  const asked: unknown[] = [];
  return { host: { name: 'kvm2' }, asked, call: async (method: string, params: unknown) => (asked.push({ method, params }), admission) } as unknown as AgentClient & { asked: unknown[] };
}

const domain = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Server</model></cpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <interface type='network'><source network='prod'/></interface>
    <interface type='bridge'><source bridge='br0'/></interface>
  </devices></domain>`);

const welcome: Admission = {
  hostUuid: '00000000-0000-0000-0000-0000000000bb',
  state: null,
  cpu: { verdict: 'superset', accepted: true, missingFeatures: [], forbiddenFeatures: [] },
  networks: [{ name: 'prod', active: true }],
  bridges: [{ name: 'br0', ports: [] }],
};

function refused(fn: () => void, code: string, hint: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof FerryError && e.code === code && hint.test(e.hint ?? ''));
}

const passthrough = parseDomainXml(`<domain type='kvm'><name>db1</name><memory unit='MiB'>256</memory><cpu mode='host-passthrough'/><os><type arch='x86_64'>hvm</type></os><devices/></domain>`);
const sourceHostCpu = "<cpu><arch>x86_64</arch><model>Skylake-Client-IBRS</model><feature name='avx512f'/></cpu>";

test('the target is asked once for all it must offer: the CPU only when there is one to compare, the networks only when used', async () => {
  const host = target(welcome);
  await askAdmission(host, domain, '<domain>live</domain>');
  const noCpu = parseDomainXml(`<domain type='qemu'><name>tiny</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices/></domain>`);
  await askAdmission(host, noCpu, '<domain>tiny</domain>');
  // The migratable XML names the network as the user wrote it; it decides whether networks are asked for.
  await askAdmission(host, domain, '<domain>live</domain>', { networksOf: noCpu });
  assert.deepEqual(host.asked, [
    { method: 'libvirt.admission', params: { domain: 'web1', xml: '<domain>live</domain>', networks: true } },
    { method: 'libvirt.admission', params: { domain: 'tiny', networks: false } },
    { method: 'libvirt.admission', params: { domain: 'web1', xml: '<domain>live</domain>', networks: false } },
  ]);
});

test("a host-passthrough guest's CPU is its source host's: that CPU is compared on the target, when the move keeps the guest running", async () => {
  const host = target(welcome);
  await askAdmission(host, passthrough, '<domain>db1</domain>', { sourceHostCpu });
  // A cold move gives no source CPU: the guest boots anew with the target's.
  await askAdmission(host, passthrough, '<domain>db1</domain>');
  assert.deepEqual(host.asked, [
    { method: 'libvirt.admission', params: { domain: 'db1', networks: false, xml: sourceHostCpu, virtType: 'kvm', arch: 'x86_64' } },
    { method: 'libvirt.admission', params: { domain: 'db1', networks: false } },
  ]);
  const lacking = {
    ...welcome,
    cpu: { verdict: 'incompatible' as const, accepted: false, missingFeatures: ['avx512f'], forbiddenFeatures: [], message: 'Host CPU does not provide required features: avx512f' },
  };
  assert.throws(
    () => judgeAdmission('kvm2', passthrough, lacking, { sourceHostCpu }),
    (e: unknown) => e instanceof FerryError && e.code === 'INCOMPATIBLE_CPU' && /host's own CPU \(host-passthrough\)/.test(e.message) && /lacks avx512f; move it with --mode cold/.test(e.hint ?? ''),
  );
});

test('a domain of the same name on the target is refused, with the command that frees the name', () => {
  refused(() => judgeAdmission('kvm2', domain, { ...welcome, state: 'shut off' }), 'TARGET_EXISTS', /virsh undefine web1/);
  judgeAdmission('kvm2', domain, welcome);
});

test('a CPU the target cannot give is refused, naming the missing features', () => {
  refused(
    () => judgeAdmission('kvm2', domain, { ...welcome, cpu: { verdict: 'incompatible', accepted: false, missingFeatures: ['avx512f', 'pku'], forbiddenFeatures: [] } }),
    'INCOMPATIBLE_CPU',
    /avx512f, pku/,
  );
});

test('a libvirt network not active, or a bridge missing, on the target is refused with how to make it', () => {
  refused(() => judgeAdmission('kvm2', domain, { ...welcome, networks: [{ name: 'prod', active: false }] }), 'NO_NETWORK', /virsh net-start prod/);
  refused(() => judgeAdmission('kvm2', domain, { ...welcome, bridges: [{ name: 'virbr0', ports: [] }] }), 'NO_NETWORK', /ip link add br0 type bridge/);
  // The interfaces judged are those of the description given for them (a live move gives the migratable XML's).
  const unattached = parseDomainXml(`<domain type='qemu'><name>web1</name><memory unit='MiB'>256</memory><os><type arch='x86_64'>hvm</type></os><devices/></domain>`);
  judgeAdmission('kvm2', domain, { ...welcome, networks: [], bridges: [] }, { networksOf: unattached });
});

test('two libvirt hosts with one host UUID: the error names the fix (seed 002)', () => {
  const e = sameHostUuidError('kvm1', 'kvm2', '00000000-0000-0000-0000-0000000000aa');
  assert.equal(e.code, 'SAME_HOST_UUID');
  assert.match(e.message, /attempt to migrate guest to the same host/);
  assert.match(e.hint ?? '', /host_uuid.*libvirtd\.conf on "kvm2"/);
});

test('a domain with pool volumes has its pools asked for, once each', async () => {
  const host = target(welcome);
  const pooled = parseDomainXml(`<domain type='qemu'><name>db2</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os><devices>
    <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' volume='db2.qcow2'/><target dev='vda'/></disk>
    <disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='default' volume='db2-data.qcow2'/><target dev='vdb'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/srv/db2.raw'/><target dev='vdc'/></disk>
  </devices></domain>`);
  await askAdmission(host, pooled, '<domain>db2</domain>');
  assert.deepEqual(host.asked, [{ method: 'libvirt.admission', params: { domain: 'db2', networks: false, pools: ['default'] } }]);
});

const volumePlan = (targetPath = '/var/lib/libvirt/images/db2.qcow2', shared = false): DiskPlan => ({
  disk: {
    device: 'vda',
    path: '/var/lib/libvirt/images/db2.qcow2',
    format: 'qcow2',
    virtualSize: 1 << 30,
    backingChain: [],
    cache: { writeback: true, direct: true, noFlush: false },
    readOnly: false,
    kind: 'volume',
    volume: { pool: 'default', name: 'db2.qcow2' },
  },
  index: 0,
  targetPath,
  targetFormat: 'qcow2',
  create: !shared,
  sync: 'top',
  shared,
});

test("a volume disk that stays in its pool needs the pool on the target, active, on the source's directory; each refusal says how to make it so", () => {
  const pool = { name: 'default', defined: true, active: true, path: '/var/lib/libvirt/images' };
  checkPools('kvm2', 'kvm1', [volumePlan()], [pool]);
  checkPools('kvm2', 'kvm1', [volumePlan(undefined, true)], [pool]);
  const refusedWith = (pools: Parameters<typeof checkPools>[3], message: RegExp, hint: RegExp): void =>
    assert.throws(
      () => checkPools('kvm2', 'kvm1', [volumePlan()], pools),
      (e: unknown) => e instanceof FerryError && e.code === 'NO_POOL' && message.test(e.message) && hint.test(e.hint ?? ''),
    );
  refusedWith([], /Storage pool "default" is not defined on "kvm2"; disk vda is its volume "db2\.qcow2"/, /virsh pool-define-as default dir --target \/var\/lib\/libvirt\/images.*--disk-map/);
  refusedWith([{ ...pool, active: false }], /is not active/, /virsh pool-start default/);
  refusedWith(
    [{ ...pool, path: '/srv/images' }],
    /keeps its volumes in \/srv\/images, not in \/var\/lib\/libvirt\/images as on "kvm1"/,
    /--disk-map \/var\/lib\/libvirt\/images\/db2\.qcow2=\/srv\/images\/db2\.qcow2/,
  );
  // Mapped out of the pool by --disk-map, it is a file there: no pool needed.
  checkPools('kvm2', 'kvm1', [volumePlan('/srv/db2.qcow2')], []);
});

const rbdDomain = parseDomainXml(`<domain type='kvm'><name>db1</name><memory unit='MiB'>256</memory><os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <auth username='libvirt'><secret type='ceph' uuid='2A7A4C2B-97C4-4D1A-9E3B-7F0D8C7E5A11'/></auth>
      <source protocol='rbd' name='vms/db1'><host name='10.0.0.5' port='6789'/></source><target dev='vda' bus='virtio'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <source protocol='iscsi' name='iqn.2024-01.lab:store/1'><host name='10.0.0.6'/><auth username='chap'><secret type='iscsi' usage='libvirtiscsi'/></auth></source>
      <target dev='vdb' bus='virtio'/></disk>
  </devices></domain>`);

test('the secrets a network disk logs in with are asked of the target only when there is one, and must be defined there by UUID or by usage', async () => {
  const t = target({ ...welcome, secrets: [] });
  await askAdmission(t, domain, '<domain/>');
  await askAdmission(t, rbdDomain, '<domain/>');
  assert.deepEqual(
    t.asked.map((a) => (a as { params: { secrets?: boolean } }).params.secrets),
    [undefined, true],
  );
  const both = parseSecretList(` UUID                                   Usage
--------------------------------------------------------------------
 2a7a4c2b-97c4-4d1a-9e3b-7f0d8c7e5a11   ceph client.libvirt secret
 5b1c0f3e-0000-4c4c-8c8c-000000000001   iscsi libvirtiscsi
`);
  assert.deepEqual(both[0], { uuid: '2a7a4c2b-97c4-4d1a-9e3b-7f0d8c7e5a11', type: 'ceph', usage: 'client.libvirt secret' });
  assert.doesNotThrow(() => checkSecrets('kvm2', rbdDomain, both));
  refused(() => checkSecrets('kvm2', rbdDomain, both.slice(1)), 'NOT_FOUND', /virsh secret-dumpxml 2A7A4C2B-97C4-4D1A-9E3B-7F0D8C7E5A11/);
  assert.throws(
    () => checkSecrets('kvm2', rbdDomain, both.slice(0, 1)),
    (e: unknown) =>
      e instanceof FerryError &&
      /Disk vdb of domain "db1" logs in to its storage with the iscsi secret "libvirtiscsi", which is not defined on "kvm2"/.test(e.message) &&
      /virsh secret-list/.test(e.hint ?? ''),
  );
});

test('with --copy-secrets the secrets the target lacks are returned to be carried, each once, instead of refused; the refusal names the flag', () => {
  const none = parseSecretList('');
  assert.deepEqual(checkSecrets('kvm2', rbdDomain, none, true), [
    { type: 'ceph', uuid: '2A7A4C2B-97C4-4D1A-9E3B-7F0D8C7E5A11', usage: undefined },
    { type: 'iscsi', uuid: undefined, usage: 'libvirtiscsi' },
  ]);
  const twice = { ...rbdDomain, disks: [...rbdDomain.disks, rbdDomain.disks[0]!] };
  assert.equal(checkSecrets('kvm2', twice, none, true).length, 2, 'a secret two disks use is carried once');
  assert.deepEqual(checkSecrets('kvm2', rbdDomain, parseSecretList(' 2a7a4c2b-97c4-4d1a-9e3b-7f0d8c7e5a11   ceph x\n 5b1c0f3e-0000-4c4c-8c8c-000000000001   iscsi libvirtiscsi\n'), true), []);
  assert.throws(
    () => checkSecrets('kvm2', rbdDomain, none),
    (e: unknown) => e instanceof FerryError && /pass --copy-secrets/.test(e.hint ?? ''),
  );
});
