/**
 * A QMP client over any duplex stream (a unix socket in use, an in-memory
 * pair in tests): newline-delimited JSON, commands matched to replies by id,
 * asynchronous events, typed errors, time-outs, and a clean error for every
 * pending command when QEMU goes away.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { FerryError } from '../util/errors.js';
import { QmpError, qmpClosed, qmpTimeout } from './errors.js';
import { text } from '../util/text.js';

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  /** QEMU's timestamp, in milliseconds since the epoch. */
  timestampMs: number;
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
}

export interface ExecuteOptions {
  timeoutMs?: number;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Events: 'event' (QmpEvent), 'close' (FerryError). */
export class QmpClient extends EventEmitter {
  greeting?: QmpGreeting;
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closedError?: FerryError;
  private greeted?: (g: QmpGreeting) => void;

  constructor(private readonly stream: Duplex) {
    super();
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => this.onData(chunk));
    stream.on('error', (e) => this.shutdown(qmpClosed(e.message)));
    stream.on('close', () => this.shutdown(qmpClosed('the monitor connection closed')));
  }

  /** Connects to a QMP unix socket and leaves command mode negotiated. */
  static async connect(socketPath: string, options: ExecuteOptions = {}): Promise<QmpClient> {
    const socket = netConnect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (e: NodeJS.ErrnoException) => reject(new FerryError('QMP_CLOSED', `Cannot connect to QMP socket "${socketPath}": ${e.code ?? e.message}`, { hint: 'is the VM running?' })));
    });
    const client = new QmpClient(socket);
    await client.handshake(options);
    return client;
  }

  async handshake(options: ExecuteOptions = {}): Promise<QmpGreeting> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const greeting = await new Promise<QmpGreeting>((resolve, reject) => {
      if (this.greeting) return resolve(this.greeting);
      const timer = setTimeout(() => reject(qmpTimeout('greeting', timeoutMs)), timeoutMs);
      this.greeted = (g) => {
        clearTimeout(timer);
        resolve(g);
      };
      this.once('close', (e: FerryError) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    await this.execute('qmp_capabilities', undefined, options);
    return greeting;
  }

  /** Sends a command and resolves with its "return" value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: ExecuteOptions = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { command, resolve: resolve as (v: unknown) => void, reject };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(id);
          reject(qmpTimeout(command, timeoutMs));
        }, timeoutMs);
      }
      this.pending.set(id, entry);
      const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.stream.write(JSON.stringify(msg) + '\n');
    });
  }

  /** Resolves with the first event named `name` that satisfies `match`. */
  waitForEvent(name: string, match: (e: QmpEvent) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<QmpEvent> {
    return waitForQmpEvent(this, name, match, timeoutMs);
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    this.stream.destroy();
    this.shutdown(qmpClosed('closed by ferry'));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // QEMU only sends JSON; ignore noise rather than die mid-migration
    }
    if (!isObject(msg)) return;
    if ('QMP' in msg) {
      this.greeting = msg.QMP as QmpGreeting;
      this.greeted?.(this.greeting);
      return;
    }
    if (typeof msg.event === 'string') {
      const ts = msg.timestamp;
      const event: QmpEvent = {
        event: msg.event,
        data: isObject(msg.data) ? msg.data : {},
        timestampMs: isObject(ts) && typeof ts.seconds === 'number' && typeof ts.microseconds === 'number' ? ts.seconds * 1000 + ts.microseconds / 1000 : Date.now(),
      };
      this.emit('event', event);
      return;
    }
    const id = msg.id === undefined ? undefined : text(msg.id);
    const entry = id === undefined ? undefined : this.pending.get(id);
    if (!entry || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    if ('error' in msg) {
      const { class: qmpClass, desc } = isObject(msg.error) ? msg.error : {};
      entry.reject(new QmpError(entry.command, String(qmpClass), String(desc)));
    } else {
      entry.resolve(msg.return);
    }
  }

  private shutdown(error: FerryError): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    this.emit('close', error);
  }
}

/** A JSON object (QMP messages and their members are objects, never arrays). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Anything that emits QMP events and 'close', local or through an agent. */
export interface QmpEventSource extends EventEmitter {
  readonly closed: boolean;
}

export function waitForQmpEvent(source: QmpEventSource, name: string, match: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent> {
  return new Promise((resolve, reject) => {
    const onEvent = (e: QmpEvent): void => {
      if (e.event === name && match(e)) {
        cleanup();
        resolve(e);
      }
    };
    const onClose = (e: FerryError): void => {
      cleanup();
      reject(e);
    };
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            cleanup();
            reject(new FerryError('QMP_TIMEOUT', `QEMU did not send ${name} within ${timeoutMs} ms`));
          }, timeoutMs)
        : undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      source.off('event', onEvent);
      source.off('close', onClose);
    };
    source.on('event', onEvent);
    source.on('close', onClose);
  });
}
