/**
 * The controller's side of the agent protocol: one connection per host, typed
 * calls derived from the agent's registry, notifications, and a clean error
 * when the agent (or the ssh link to it) goes away.
 */
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import * as rpc from 'vscode-jsonrpc/node.js';
import type { AgentMethod, AgentParams, AgentResult } from '../agent/registry.js';
import type { HostFacts } from '../agent/handlers/system.js';
import { FerryError, type SerializedError, messageOf } from '../util/errors.js';
import type { HostConfig } from './inventory.js';
import { spawnAgent, type AgentProcess } from './transport.js';
import { trace, tracing } from '../util/trace.js';

const FERRY_ERROR_CODE = -32001;

export interface ConnectOptions {
  /** How long to wait for the agent to answer its first call. */
  timeoutMs?: number;
}

export class AgentClient extends EventEmitter {
  readonly host: HostConfig;
  /** The host's facts, once `ready` has settled. */
  facts!: HostFacts;
  /** Settles with the agent's first answer (see `start`). */
  ready!: Promise<void>;
  private readonly child: AgentProcess;
  private readonly connection: rpc.MessageConnection;
  private stderr = '';
  private toAgent!: PassThrough;
  private closedError?: FerryError;
  /** Set by close(): later calls are refused. */
  private closing = false;

  private constructor(host: HostConfig, child: AgentProcess) {
    super();
    this.host = host;
    this.child = child;
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    // Writes go through a PassThrough: once the agent (or its ssh) is gone, a
    // write fails with EPIPE on the pipe, where it is ignored, instead of in
    // the RPC layer's promise; 'exit' below reports the loss.
    const toAgent = (this.toAgent = new PassThrough());
    child.stdin.on('error', () => undefined);
    toAgent.pipe(child.stdin);
    const reader = new rpc.StreamMessageReader(child.stdout);
    // No timer for a message half received: an agent killed in the middle of
    // one would leave it re-arming every 10 s forever, and the command would
    // never exit.
    reader.partialMessageTimeout = 0;
    this.connection = rpc.createMessageConnection(reader, new rpc.StreamMessageWriter(toAgent));
    this.connection.onNotification((method: string, params: unknown) => this.emit('notification', method, params));
    // The agent's output may end a moment before its exit is reported: a
    // call made in between must already say the agent is gone, and so must
    // `closed`, or whoever settles would reuse a dead agent.
    const gone = (why: string): void => {
      if (this.closedError) return;
      this.closedError = new FerryError('AGENT_GONE', `Lost the agent on host "${host.name}" (${why})${this.lastStderr()}`, {
        hint: host.transport === 'ssh' ? `check that "ssh ${host.ssh}" works and ferry is installed there` : undefined,
      });
      this.emit('close', this.closedError);
    };
    this.connection.onClose(() => gone('its connection ended'));
    child.on('exit', (code, signal) => {
      gone(signal ?? `exit ${code}`);
      this.connection.dispose();
    });
    this.connection.listen();
  }

  /** Starts the host's agent and waits for its first answer (the host's facts). */
  static async connect(host: HostConfig, options: ConnectOptions = {}): Promise<AgentClient> {
    const early = AgentClient.early.get(host.name);
    AgentClient.early.delete(host.name);
    const client = early && JSON.stringify(early.host) === JSON.stringify(host) ? early : AgentClient.start(host, options);
    if (early && client !== early) early.close();
    // Let the caller start its other agents before this one's answer, so
    // that all of them boot at once.
    await client.ready;
    return client;
  }

  /** Agents started before the command knew it needed them, by host name. */
  private static readonly early = new Map<string, AgentClient>();

  /**
   * Starts the host's agent now, for the next `connect` to that host to
   * take: a command whose hosts are plain from its arguments starts their
   * agents while its own modules still load. Failing here is left to
   * `connect`, which starts it again and reports why.
   */
  static startEarly(host: HostConfig): void {
    if (AgentClient.early.has(host.name)) return;
    try {
      AgentClient.early.set(host.name, AgentClient.start(host));
    } catch {
      // connect says why
    }
  }

  /** Closes the agents started early that no command took. */
  static closeUnused(): void {
    for (const client of AgentClient.early.values()) client.close();
    AgentClient.early.clear();
  }

  /**
   * Starts the host's agent and returns at once: calls made meanwhile
   * queue behind the first one and reach the agent as soon as it reads,
   * which saves a round trip where a command knows its first calls. `ready`
   * settles with the first answer, or with the error that explains why
   * there is none (an UNREACHABLE FerryError).
   */
  static start(host: HostConfig, options: ConnectOptions = {}): AgentClient {
    let child: AgentProcess;
    try {
      trace(`agent: spawn for ${host.name}`);
      child = spawnAgent(host);
    } catch (e) {
      throw new FerryError('UNREACHABLE', `Cannot start the agent for host "${host.name}": ${messageOf(e)}`);
    }
    const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(e)));
    spawnError.catch(() => undefined);
    const client = new AgentClient(host, child);
    client.ready = client.handshake(spawnError, options.timeoutMs ?? 20_000);
    client.ready.catch(() => undefined); // for whoever awaits it
    return client;
  }

  private async handshake(spawnError: Promise<never>, timeoutMs: number): Promise<void> {
    const host = this.host;
    let timer: NodeJS.Timeout | undefined;
    try {
      this.facts = await Promise.race([
        this.call('system.facts', { as: host.name }),
        spawnError,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      this.close();
      const why = this.closedError ? this.closedError.message : messageOf(e) + this.lastStderr();
      throw new FerryError('UNREACHABLE', `Cannot reach host "${host.name}": ${why}`, {
        hint:
          host.transport === 'ssh'
            ? `check that "ssh ${[...host.sshOptions, host.ssh].join(' ')}" logs in without a password and that "${(host.agent ?? ['ferry', 'agent']).join(' ')}" runs there`
            : 'check the host entry in the inventory',
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Calls an agent method; agent-side FerryErrors are rethrown as they were raised. */
  async call<M extends AgentMethod>(method: M, params: AgentParams<M>): Promise<AgentResult<M>> {
    if (this.closedError) throw this.closedError;
    if (this.closing) throw new FerryError('AGENT_GONE', `The connection to the agent on host "${this.host.name}" is closed`);
    const sent = tracing ? performance.now() : 0;
    try {
      return (await this.connection.sendRequest(method, params)) as AgentResult<M>;
    } catch (e) {
      if (e instanceof rpc.ResponseError && e.code === FERRY_ERROR_CODE && e.data) {
        throw FerryError.fromJSON(e.data as SerializedError);
      }
      // Read again: the agent may have gone while the call was in flight.
      const lost = this.lostWith();
      if (lost) throw lost;
      throw new FerryError('AGENT_ERROR', `Agent on "${this.host.name}" failed "${method}": ${messageOf(e)}`);
    } finally {
      if (tracing) trace(`call ${this.host.name} ${method} ${Math.round(performance.now() - sent)} ms`);
    }
  }

  private lostWith(): FerryError | undefined {
    return this.closedError;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Ends the agent; its handlers' cleanups run on the host. */
  close(): void {
    this.closing = true;
    if (this.child.exitCode === null && !this.child.killed) {
      // The agent's stdin ends, not the stream the RPC layer writes to: a
      // message it still had queued then goes nowhere, where a write to an
      // ended stream would throw out of the RPC layer.
      this.toAgent.unpipe(this.child.stdin);
      this.child.stdin.end();
      const t = setTimeout(() => this.child.kill('SIGTERM'), 2000);
      t.unref();
    }
  }

  /** For fault tests: kills the transport abruptly, as a dropped link would. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  private lastStderr(): string {
    const line = this.stderr.trim().split('\n').filter(Boolean).pop();
    return line ? `: ${line}` : '';
  }
}
