/**
 * A QMP session held by a host's agent, used by the controller as if the
 * monitor were local: commands, events (with QEMU's timestamps) and a close
 * when QEMU or the agent goes away.
 */
import { EventEmitter } from 'node:events';
import type { AgentClient } from '../../hosts/agent-client.js';
import { waitForQmpEvent, type QmpEvent, type QmpEventSource, type QmpGreeting } from '../../qmp/client.js';
import { FerryError } from '../../util/errors.js';

export class RemoteQmp extends EventEmitter implements QmpEventSource {
  private closedError?: FerryError;

  private constructor(
    readonly agent: AgentClient,
    readonly session: number,
    readonly greeting: QmpGreeting,
  ) {
    super();
    const onNotification = (method: string, params: { session: number; event?: QmpEvent; message?: string }): void => {
      if (params.session !== this.session) return;
      if (method === 'qmp.event' && params.event) this.emit('event', params.event);
      if (method === 'qmp.closed') this.shutdown(new FerryError('QMP_CLOSED', `QEMU on "${agent.host.name}" went away: ${params.message}`));
    };
    const onAgentClose = (e: FerryError): void => this.shutdown(e);
    agent.on('notification', onNotification);
    agent.once('close', onAgentClose);
    this.detach = () => {
      agent.off('notification', onNotification);
      agent.off('close', onAgentClose);
    };
  }

  private readonly detach: () => void;

  static async open(agent: AgentClient, socket: string): Promise<RemoteQmp> {
    const { session, greeting } = await agent.call('qmp.open', { socket });
    return new RemoteQmp(agent, session, greeting);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (this.closedError) throw this.closedError;
    return (await this.agent.call('qmp.execute', { session: this.session, command, arguments: args, timeoutMs })) as T;
  }

  waitForEvent(name: string, match: (e: QmpEvent) => boolean = () => true, timeoutMs = 60_000): Promise<QmpEvent> {
    return waitForQmpEvent(this, name, match, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closedError) return;
    this.shutdown(new FerryError('QMP_CLOSED', 'closed by ferry'));
    await this.agent.call('qmp.close', { session: this.session }).catch(() => undefined);
  }

  private shutdown(e: FerryError): void {
    if (this.closedError) return;
    this.closedError = e;
    this.detach();
    this.emit('close', e);
  }
}
