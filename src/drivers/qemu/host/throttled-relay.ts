/**
 * A TCP relay that holds the bytes going one way to a rate: the source
 * QEMU's NBD client connects through it to the target's NBD server when the
 * migration has a bandwidth cap. QEMU's own job speed counts every byte of
 * the disk, zeros included, against the cap; on the wire a run of zeros is a
 * short write-zeroes request, so capping the wire spends the budget on data.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Throttle } from '../../../sync/throttle.js';

export interface RelayOptions {
  /** Where the relay listens (the source host's own address). */
  address: string;
  /** Where it forwards to. */
  to: { host: string; port: number };
  /** The cap on bytes forwarded towards `to`, per second. */
  bytesPerSecond: number;
}

export class ThrottledRelay {
  private readonly sockets = new Set<Socket>();
  /** Bytes forwarded towards the target so far. */
  forwarded = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(options: RelayOptions): Promise<ThrottledRelay> {
    // One bucket for every connection: the cap holds for the migration, not per disk.
    const throttle = new Throttle(options.bytesPerSecond);
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, options.address, () => {
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : 0);
      });
    });
    const relay = new ThrottledRelay(server, port);
    server.on('connection', (client: Socket) => relay.forward(client, options, throttle));
    return relay;
  }

  private forward(client: Socket, options: RelayOptions, throttle: Throttle): void {
    const upstream = connect(options.to);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    // Replies come back unthrottled; writes towards the target wait for their share of the cap.
    upstream.pipe(client);
    let queue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      client.pause();
      queue = queue.then(async () => {
        await throttle.take(chunk.length);
        this.forwarded += chunk.length;
        if (!upstream.write(chunk)) await new Promise((r) => upstream.once('drain', r));
        client.resume();
      });
    });
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}
