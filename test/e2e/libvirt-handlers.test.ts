/**
 * The libvirt driver's host handlers against a real libvirtd: lab-a's. They
 * define and undefine a domain of their own, ferry-handlers-test, and touch
 * nothing else there.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../src/util/errors.js';
import { libvirtHandlers as h } from '../../src/drivers/libvirt/host/handlers.js';
import { LAB_HOSTS } from '../../src/lab/lab.js';
import { useLab } from './harness.js';

// lab-a's libvirtd, reached from this machine over the lab's loopback TCP.
useLab(() => undefined);

const uri = `qemu+tcp://${LAB_HOSTS[0]!.address}/system`;
const NAME = 'ferry-handlers-test';
const DOMAIN_XML = `<domain type='qemu'>
  <name>${NAME}</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model><feature policy='require' name='amx-tile'/></cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/nonexistent/ferry-handlers-test.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'><mac address='52:54:00:fe:00:01'/><model type='virtio'/></interface>
  </devices>
</domain>`;

test('libvirt.available answers with versions, and without a daemon says what to do', async () => {
  const up = await h['libvirt.available']({ uri });
  assert.ok(up.available && /^\d+\.\d+\.\d+$/.test(up.library ?? ''), JSON.stringify(up));
  const down = await h['libvirt.available']({ uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock' });
  assert.equal(down.available, false);
  assert.match(!down.available ? (down.hint ?? '') : '', /^start libvirtd on /);
});

test('a defined domain is listed, dumped, refused when defined again under another UUID, and undefined', async () => {
  const { name, uuid } = await h['libvirt.define']({ uri, xml: DOMAIN_XML, validate: true });
  try {
    assert.equal(name, NAME);
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    const listed = (await h['libvirt.domains']({ uri })).find((d) => d.name === NAME);
    assert.equal(listed?.state, 'shut off');
    assert.equal(listed?.persistent, true);
    assert.equal(listed?.description.uuid, uuid);
    assert.equal(listed?.description.disks[0]?.path, '/nonexistent/ferry-handlers-test.qcow2');
    const { xml } = await h['libvirt.dumpxml']({ uri, domain: NAME, inactive: true, migratable: true });
    assert.match(xml, new RegExp(`<uuid>${uuid}</uuid>`));
    await assert.rejects(
      h['libvirt.define']({ uri, xml: DOMAIN_XML.replace('<name>', '<uuid>11111111-2222-3333-4444-555555555555</uuid><name>') }),
      (e: unknown) => e instanceof FerryError && e.code === 'TARGET_EXISTS' && /undefine it first/.test(e.hint ?? ''),
    );
    assert.deepEqual(await h['libvirt.destroy']({ uri, domain: NAME }), { wasRunning: false });
    assert.deepEqual(await h['libvirt.shutdown']({ uri, domain: NAME }), { state: 'shut off' });
    assert.equal((await h['libvirt.jobInfo']({ uri, domain: NAME })).type, 'none');
    await assert.rejects(
      h['libvirt.start']({ uri, domain: NAME }),
      (e: unknown) => e instanceof FerryError && e.code === 'NOT_FOUND' && /\/nonexistent\/ferry-handlers-test\.qcow2/.test(e.message) && /copy it/.test(e.hint ?? ''),
    );
  } finally {
    await h['libvirt.undefine']({ uri, domain: NAME });
  }
  assert.equal(
    (await h['libvirt.domains']({ uri })).find((d) => d.name === NAME),
    undefined,
  );
});

test('an unknown domain is an UNKNOWN_VM error that lists the domains there', async () => {
  await assert.rejects(
    h['libvirt.dumpxml']({ uri, domain: 'no-such-domain' }),
    (e: unknown) => e instanceof FerryError && e.code === 'UNKNOWN_VM' && /"no-such-domain"/.test(e.message) && /^(domains there: |libvirt at )/.test(e.hint ?? ''),
  );
});

test('libvirt.cpuCompare names the features this host lacks, and passes a CPU it provides', async () => {
  const bad = await h['libvirt.cpuCompare']({ uri, xml: DOMAIN_XML });
  assert.equal(bad.accepted, false);
  assert.ok(bad.missingFeatures.includes('amx-tile'), JSON.stringify(bad));
  const passthrough = await h['libvirt.cpuCompare']({ uri, xml: DOMAIN_XML.replace(/<cpu .*<\/cpu>/, "<cpu mode='host-passthrough'/>") });
  assert.match(passthrough.note ?? '', /compare the source host's CPU/);
  const { xml } = await h['libvirt.hostCpu']({ uri });
  assert.match(xml, /^<cpu>/);
});

test('libvirt.hostUuid, networks and bridges answer', async () => {
  assert.match((await h['libvirt.hostUuid']({ uri })).uuid, /^[0-9a-f-]{36}$/);
  for (const n of await h['libvirt.networks']({ uri })) assert.equal(typeof n.active, 'boolean');
  assert.ok(Array.isArray(await h['libvirt.bridges']()));
});

test('libvirt.admission answers in one call what libvirt.state, libvirt.hostUuid, libvirt.cpuCompare and libvirt.networks answer alone', async () => {
  const { uuid } = await h['libvirt.hostUuid']({ uri });
  const networks = (await h['libvirt.networks']({ uri })).map(({ name, active }) => ({ name, active }));
  const absent = await h['libvirt.admission']({ uri, domain: NAME, xml: DOMAIN_XML, networks: true });
  assert.equal(absent.hostUuid, uuid);
  assert.equal(absent.state, null);
  assert.deepEqual(absent.cpu, await h['libvirt.cpuCompare']({ uri, xml: DOMAIN_XML }));
  assert.ok(absent.cpu?.missingFeatures.includes('amx-tile'), JSON.stringify(absent.cpu));
  assert.deepEqual(absent.networks, networks);
  assert.ok(Array.isArray(absent.bridges));
  await h['libvirt.define']({ uri, xml: DOMAIN_XML });
  try {
    const present = await h['libvirt.admission']({ uri, domain: NAME });
    assert.deepEqual(present, { hostUuid: uuid, state: 'shut off' });
    // libvirt.domain gives the same host UUID and CPU from its own virsh call.
    const host = (await h['libvirt.domain']({ uri, domain: NAME, host: true }))?.host;
    assert.equal(host?.uuid, uuid);
    assert.equal(host?.cpuXml, (await h['libvirt.hostCpu']({ uri })).xml);
  } finally {
    await h['libvirt.undefine']({ uri, domain: NAME });
  }
  await assert.rejects(h['libvirt.admission']({ uri: 'qemu+unix:///system?socket=/nonexistent/libvirt-sock', domain: NAME }), (e: unknown) => e instanceof FerryError && e.code === 'UNREACHABLE');
});

test("libvirt.admission compares a host's CPU (a host-passthrough guest's) with the virtualization type and arch given, as libvirt.cpuCompare does", async () => {
  const { xml, arch } = await h['libvirt.hostCpu']({ uri });
  const admission = await h['libvirt.admission']({ uri, domain: NAME, xml, virtType: 'qemu', arch });
  assert.deepEqual(admission.cpu, await h['libvirt.cpuCompare']({ uri, xml, virtType: 'qemu', arch }));
  // TCG does not give a guest all of a real host's CPU: a guest that had it could not go on running under it.
  assert.equal(admission.cpu?.accepted, false);
  // libvirt names the features TCG lacks, or, on a host whose vendor TCG does not report, the vendor.
  assert.ok(admission.cpu.missingFeatures.length > 0 || /vendor/.test(admission.cpu.message ?? ''), JSON.stringify(admission.cpu));
});
