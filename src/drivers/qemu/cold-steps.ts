/**
 * A cold move of a QEMU VM: it is powered off (ACPI through QMP, or its
 * power cut after a time-out with --force-off: `quit` closes its images
 * cleanly), its disks are copied by the migration, and the same command
 * line, with the planned paths, boots it on the target. A QEMU VM has no
 * definition besides its command line: nothing to define or undefine, and
 * any QEMU version on the target will do.
 */
import { dirname } from 'node:path';
import type { AgentClient } from '../../hosts/agent-client.js';
import { liveAgent } from '../../hosts/live-agent.js';
import { sleep } from '../../util/abort.js';
import { FerryError } from '../../util/errors.js';
import type { ColdSteps, DiskPlan, ShutdownOptions, StepContext, VmInfo } from '../driver.js';
import { filesQemuCreates, parseQemuArgv, targetArgv, type ParsedArgv } from './argv.js';
import { describeVm, findQemuProcess } from './inspect.js';
import { RemoteQmp } from './remote-qmp.js';
import { checkQemuTarget } from './target-checks.js';

export class QemuColdSteps implements ColdSteps {
  private proc?: { pid: number; name: string; argv: string[]; qmpSocket?: string };
  private parsed?: ParsedArgv;
  private argvOnTarget?: string[];
  /** ferry powered the VM off. */
  private stopped = false;
  /** The source's agent no longer holds the powered-off VM: the controller starts it again itself. */
  private released = false;

  constructor(private readonly ctx: StepContext) {}

  private get source(): AgentClient {
    return this.ctx.source;
  }

  private set source(agent: AgentClient) {
    this.ctx.source = agent;
  }

  private get target(): AgentClient {
    return this.ctx.target;
  }

  /** Where ferry keeps the pid of a VM it starts (the lab's convention too). */
  private pidfile(): string {
    return `/run/ferry/${this.ctx.vmName}.pid`;
  }

  async describe(): Promise<VmInfo> {
    this.proc = await findQemuProcess(this.source, this.ctx.vmName);
    this.parsed = parseQemuArgv(this.proc.argv);
    const vm = await describeVm(this.source, this.proc);
    this.ctx.journal.record('vm', { driver: 'qemu', pid: vm.pid, state: vm.state, argv: this.proc.argv, disks: vm.disks.map((d) => ({ path: d.path, format: d.format, size: d.virtualSize })) });
    return vm;
  }

  async checkTarget(vm: VmInfo): Promise<void> {
    // The guest boots afresh: any QEMU that runs the same binary name will do.
    await checkQemuTarget(this.source, this.target, this.parsed!, vm, { sameOrNewer: false });
  }

  async stopSource(options: ShutdownOptions): Promise<void> {
    const pid = this.proc!.pid;
    // Held before the power-off is asked for: from then on, a lost controller leaves the source's agent to start it again.
    if (!options.final)
      await this.source.call('qemu.holdOff', { id: this.ctx.journal.id, name: this.ctx.vmName, pid, argv: this.proc!.argv, pidfile: this.pidfile(), waitMs: options.timeoutMs + 30_000 });
    const qmp = await RemoteQmp.open(this.source, this.proc!.qmpSocket!).catch(async (e: unknown) => {
      // Nothing was asked of the guest: nothing to start again.
      if (!this.source.closed) await this.releaseSource();
      throw e;
    });
    try {
      await qmp.execute('system_powerdown');
      this.ctx.journal.record('source-stopping', { host: this.source.host.name });
      if (await this.exited(pid, options.timeoutMs)) {
        this.stopped = true;
        return this.ctx.journal.record('source-shut-down', {});
      }
      if (!options.forceOff) {
        // It runs on, here: nothing for the source's agent to start again.
        await this.releaseSource();
        throw new FerryError('VM_RUNNING', `VM "${this.ctx.vmName}" on "${this.source.host.name}" did not power off within ${options.timeoutMs / 1000} s`, {
          hint: 'shut it down from inside the guest, give it longer with --shutdown-timeout, or pass --force-off to cut its power',
        });
      }
      // quit, unlike a kill, flushes and closes the images first.
      await qmp.execute('quit').catch(() => undefined);
    } finally {
      await qmp.close().catch(() => undefined);
    }
    if (!(await this.exited(pid, 30_000))) await this.source.call('qemu.kill', { pid, signal: 'SIGKILL' });
    this.stopped = true;
    this.ctx.journal.record('source-forced-off', {});
  }

  private async exited(pid: number, timeoutMs: number): Promise<boolean> {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(200)) {
      if (!(await this.source.call('qemu.alive', { pid })).alive) return true;
    }
    return !(await this.source.call('qemu.alive', { pid })).alive;
  }

  async startSource(): Promise<void> {
    this.source = await liveAgent(this.source.host, this.source);
    const vm = { name: this.ctx.vmName, pid: this.proc!.pid, argv: this.proc!.argv, pidfile: this.pidfile() };
    if (this.released) {
      if (!this.stopped) return;
      await this.source.call('qemu.start', { argv: vm.argv, pidfile: vm.pidfile });
      this.ctx.journal.record('source-started', { by: 'controller' });
      return;
    }
    const { by, running } = await this.source.call('qemu.settleOff', { id: this.ctx.journal.id, ...vm });
    this.ctx.journal.record('source-started', { by, running });
    if (!running) {
      throw new FerryError('VM_NOT_RUNNING', `VM "${vm.name}" was powered off on "${this.source.host.name}" and could not be started again`, {
        hint: `start it there by hand: its command line is in the journal ("vm" step)`,
      });
    }
  }

  async releaseSource(): Promise<void> {
    await this.source.call('qemu.releaseOff', { id: this.ctx.journal.id });
    this.released = true;
  }

  async defineTarget(plans: readonly DiskPlan[]): Promise<void> {
    const moved = plans.filter((p) => !p.shared);
    this.argvOnTarget = targetArgv(this.parsed!, {
      diskPaths: new Map(moved.map((p) => [p.disk.path, p.targetPath])),
      diskFormats: new Map(moved.map((p) => [p.disk.path, p.targetFormat])),
      incoming: false,
    });
    this.ctx.journal.record('target-argv', { argv: this.argvOnTarget });
  }

  async undefineTarget(): Promise<void> {
    // Nothing was made: a QEMU VM is its command line.
  }

  async startTarget(): Promise<void> {
    for (const f of filesQemuCreates(this.parsed!)) await this.target.call('file.mkdir', { path: dirname(f) });
    const { pid } = await this.target.call('qemu.start', { argv: this.argvOnTarget!, pidfile: this.pidfile() });
    this.ctx.journal.record('target-started', { host: this.target.host.name, pid });
  }

  async targetState(): Promise<string> {
    const running = (await this.target.call('qemu.list', undefined)).some((p) => p.name === this.ctx.vmName);
    return running ? 'running' : 'gone (its QEMU ended)';
  }

  async undefineSource(): Promise<void> {
    // Nothing defines a QEMU VM on the source besides the process, which is gone.
  }
}
