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
import { FerryError, type SerializedError } from '../util/errors.js';
import type { HostConfig } from './inventory.js';
import { spawnAgent, type AgentProcess } from './transport.js';
import { trace } from '../util/trace.js';

const FERRY_ERROR_CODE = -32001;

export interface ConnectOptions {
  /** How long to wait for the agent to answer its first call. */
  timeoutMs?: number;
}

export class AgentClient extends EventEmitter {
  readonly host: HostConfig;
  facts!: HostFacts;
  private readonly child: AgentProcess;
  private readonly connection: rpc.MessageConnection;
  private stderr = '';
  private toAgent!: PassThrough;
  private closedError?: FerryError;

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
    this.connection = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(toAgent));
    this.connection.onNotification((method: string, params: unknown) => this.emit('notification', method, params));
    child.on('exit', (code, signal) => {
      this.closedError = new FerryError('AGENT_GONE', `Lost the agent on host "${host.name}" (${signal ?? `exit ${code}`})${this.lastStderr()}`, {
        hint: host.transport === 'ssh' ? `check that "ssh ${host.ssh}" works and ferry is installed there` : undefined,
      });
      this.emit('close', this.closedError);
      this.connection.dispose();
    });
    this.connection.listen();
  }

  static async connect(host: HostConfig, options: ConnectOptions = {}): Promise<AgentClient> {
    let child: AgentProcess;
    try {
      trace(`agent: spawn for ${host.name}`);
      child = spawnAgent(host);
    } catch (e) {
      throw new FerryError('UNREACHABLE', `Cannot start the agent for host "${host.name}": ${(e as Error).message}`);
    }
    const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(e)));
    spawnError.catch(() => undefined);
    // Let the caller start its other agents before this one's RPC set-up, so
    // that all of them boot at once.
    await Promise.resolve();
    const client = new AgentClient(host, child);
    const timeoutMs = options.timeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      client.facts = await Promise.race([
        client.call('system.facts', undefined),
        spawnError,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      client.close();
      const why = client.closedError ? client.closedError.message : (e as Error).message + client.lastStderr();
      throw new FerryError('UNREACHABLE', `Cannot reach host "${host.name}": ${why}`, {
        hint:
          host.transport === 'ssh'
            ? `check that "ssh ${[...host.sshOptions, host.ssh].join(' ')}" logs in without a password and that "${(host.agent ?? ['ferry', 'agent']).join(' ')}" runs there`
            : 'check the host entry in the inventory',
      });
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  /** Calls an agent method; agent-side FerryErrors are rethrown as they were raised. */
  async call<M extends AgentMethod>(method: M, params: AgentParams<M>): Promise<AgentResult<M>> {
    if (this.closedError) throw this.closedError;
    try {
      return (await this.connection.sendRequest(method, params)) as AgentResult<M>;
    } catch (e) {
      if (e instanceof rpc.ResponseError && e.code === FERRY_ERROR_CODE && e.data) {
        throw FerryError.fromJSON(e.data as SerializedError);
      }
      if (this.closedError) throw this.closedError;
      throw new FerryError('AGENT_ERROR', `Agent on "${this.host.name}" failed "${method}": ${(e as Error).message}`);
    }
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Ends the agent; its handlers' cleanups run on the host. */
  close(): void {
    if (this.child.exitCode === null && !this.child.killed) {
      this.toAgent.end();
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
