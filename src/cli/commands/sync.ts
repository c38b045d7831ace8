/** `ferry sync SRC DST`: block delta sync of one disk between two hosts. */
import { Command, Option } from 'commander';
import type cliProgress from 'cli-progress';
import { AgentClient } from '../../hosts/agent-client.js';
import { findHost, loadInventory, type HostConfig } from '../../hosts/inventory.js';
import { FerryError, asFerryError, formatError } from '../../util/errors.js';
// The controller's modules, not src/sync: the engine's native hashing and
// compression addons run in the agents, and the CLI need not load them.
import { syncDisks } from '../../transfer/sync-controller.js';
import { verifyError, type SyncSummary } from '../../transfer/sync-summary.js';
import { formatEndpointSpec, parseEndpointSpec } from '../../transfer/endpoint-spec.js';
import type { SyncProgress } from '../../sync/sync-progress.js';
import { trace } from '../../util/trace.js';

interface SyncFlags {
  blockSize: string;
  compress: 'auto' | 'zstd' | 'none';
  bandwidth?: string;
  resume?: boolean;
  dryRun?: boolean;
  verify: boolean;
  fsync: boolean;
  direct: boolean;
  rehash?: boolean;
  force?: boolean;
  createLv?: string;
  format?: string;
  json?: boolean;
  hashThreads?: string;
  hosts?: string;
}

/** This machine, for a bare PATH. Its listener address matters only when it receives from a remote host. */
function localHost(): HostConfig {
  return { name: 'local', transport: 'local', sshOptions: [], address: process.env.FERRY_LOCAL_ADDRESS ?? '127.0.0.1' };
}

export function parseSize(text: string): number {
  const m = /^(\d+)([KMG]i?B?)?$/i.exec(text.trim());
  if (!m) throw new FerryError('USAGE', `Invalid size "${text}"`, { hint: 'write bytes or a number with K, M or G, e.g. 1M' });
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  return Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[unit]!;
}

export function register(program: Command): void {
  program
    .command('sync')
    .description('copy a disk to another host (or path), sending only the blocks that differ')
    .argument('<src>', 'source disk: [HOST:]PATH (file, image of any qemu-img format, block device, LV)')
    .argument('<dst>', 'destination: [HOST:]PATH, created with the source size and format when missing')
    .option('--block-size <size>', 'compare and send in blocks of this size', '1M')
    .addOption(new Option('--compress <mode>', 'compress blocks on the wire').choices(['auto', 'zstd', 'none']).default('auto'))
    .option('--bandwidth <MiB/s>', 'limit the data sent per second')
    .option('--resume', 'continue an interrupted sync from its checkpoint on the destination')
    .option('--dry-run', 'report what would be sent; write nothing')
    .option('--no-verify', 'skip reading the destination back to prove it equals the source')
    .option('--no-fsync', 'do not flush the destination at the end, as cp and qemu-img convert do not (a host crash soon after can lose the copy); verification then reads through the page cache')
    .option('--no-direct', 'write the destination through the page cache instead of with direct I/O')
    .option('--rehash', 'read and hash the whole destination even when ferry remembers its digests from the last sync')
    .option('--force', 'write even when the destination is mounted or open in a VM')
    .option('--create-lv <vg>', 'create a missing destination logical volume /dev/VG/LV in this volume group')
    .option('--format <fmt>', 'format of a destination image that must be created (default: from its name, .img raw, .qcow2 qcow2; else the source\'s)')
    .option('--json', 'print one JSON object with the result')
    .option('--hash-threads <n>', 'hashing threads per host (default: cores, at most 4)')
    .action(async (srcText: string, dstText: string, _flags: SyncFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<SyncFlags>();
      const clients: AgentClient[] = [];
      let bar: cliProgress.SingleBar | undefined;
      const onSigint = (): void => {
        bar?.stop();
        for (const c of clients) c.close();
        process.stderr.write('\nInterrupted. Run the same command with --resume to continue from the last checkpoint.\n');
        process.exit(130);
      };
      process.once('SIGINT', onSigint);
      try {
        const summary = await runSync(srcText, dstText, flags, clients, (b) => (bar = b));
        if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else printSummary(summary);
        trace('cli: result out');
        if (summary.status === 'verify-failed') {
          process.stderr.write(formatError(verifyError(summary)) + '\n');
          process.exitCode = 1;
        }
      } catch (e) {
        bar?.stop();
        const err = asFerryError(e);
        if (flags.json) process.stdout.write(JSON.stringify({ status: 'error', code: err.code, message: err.message, hint: err.hint }) + '\n');
        process.stderr.write(formatError(err) + '\n');
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSigint);
        for (const c of clients) c.close();
      }
    });
}

async function runSync(srcText: string, dstText: string, flags: SyncFlags, clients: AgentClient[], setBar: (b: cliProgress.SingleBar) => void): Promise<SyncSummary> {
  const src = parseEndpointSpec(srcText);
  const dst = parseEndpointSpec(dstText);
  if (src.host === dst.host && src.path === dst.path) {
    throw new FerryError('USAGE', `Cannot sync "${srcText}" onto itself: source and destination are the same`, { hint: 'name a different destination' });
  }
  const needInventory = src.host !== undefined || dst.host !== undefined;
  const inv = needInventory ? loadInventory(flags.hosts) : undefined;
  const hostOf = (h: string | undefined): HostConfig => (h === undefined ? localHost() : findHost(inv!, h));
  const srcHost = hostOf(src.host);
  const dstHost = hostOf(dst.host);
  const bandwidth = flags.bandwidth === undefined ? undefined : Number(flags.bandwidth);
  if (bandwidth !== undefined && !(bandwidth > 0)) throw new FerryError('USAGE', `Invalid bandwidth "${flags.bandwidth}"`, { hint: 'give MiB per second, e.g. --bandwidth 100' });
  const hashThreads = flags.hashThreads === undefined ? undefined : Number(flags.hashThreads);

  // The agents boot (a node start each) while this process loads the
  // progress bar; the sync's first calls go out without waiting for them.
  const srcClient = AgentClient.start(srcHost);
  clients.push(srcClient);
  const dstClient = AgentClient.start(dstHost);
  clients.push(dstClient);
  const view = new ProgressView(process.stderr.isTTY && !flags.json, setBar);
  try {
    return await syncDisks(
      { client: srcClient, path: src.path, label: formatEndpointSpec(src) },
      { client: dstClient, path: dst.path, label: formatEndpointSpec(dst) },
      {
        blockSize: parseSize(flags.blockSize),
        compress: flags.compress,
        bandwidthMiB: bandwidth,
        resume: flags.resume,
        dryRun: flags.dryRun,
        verify: flags.verify,
        fsync: flags.fsync,
        direct: flags.direct,
        rehash: flags.rehash,
        force: flags.force,
        createLv: flags.createLv,
        createFormat: flags.format,
        hashThreads,
        onProgress: (p) => view.show(p),
        onWarning: (m) => {
          view.stop();
          process.stderr.write(`warning: ${m}\n`);
        },
      },
    );
  } finally {
    view.stop();
  }
}

/**
 * Progress on stderr: a bar on a terminal, plain lines every 2 s for logs
 * and pipes (stdout keeps only the result).
 */
class ProgressView {
  private bars: typeof cliProgress | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;

  constructor(
    private readonly tty: boolean,
    private readonly onBar: (b: cliProgress.SingleBar) => void,
  ) {
    // Loaded while the agents start. (Progress before it has loaded is not shown: it comes within milliseconds.)
    if (tty) void import('cli-progress').then((m) => (this.bars = m.default), () => undefined);
  }

  show(p: SyncProgress): void {
    const payload = progressFields(p);
    if (!this.tty) return this.line(p, payload);
    if (!this.bars) return;
    const bar = (this.bar ??= this.startBar(this.bars, p, payload));
    if (p.phase === 'verify' && bar.getTotal() !== p.bytesToVerify) bar.setTotal(Math.max(1, p.bytesToVerify));
    bar.update(p.phase === 'verify' ? p.bytesVerified : p.bytesCompared, payload);
  }

  stop(): void {
    this.bar?.stop();
  }

  private startBar(bars: typeof cliProgress, p: SyncProgress, payload: Record<string, string>): cliProgress.SingleBar {
    const bar = new bars.SingleBar(
      {
        format: '{phase} |{bar}| {percentage}% {compared}/{size} | sent {sent} | changed {changed} blocks | {rate}/s | ETA {eta_formatted}',
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 20,
      },
      bars.Presets.shades_classic,
    );
    bar.start(p.bytesTotal, 0, payload);
    this.onBar(bar);
    return bar;
  }

  private line(p: SyncProgress, payload: Record<string, string>): void {
    if (performance.now() - this.lastLine <= 2000) return;
    this.lastLine = performance.now();
    process.stderr.write(
      `${payload.phase}: ${payload.compared} of ${payload.size} compared, ${payload.sent} sent, ${p.blocksChanged} blocks changed, ${p.blocksConfirmed} blocks confirmed, ${payload.rate}/s\n`,
    );
  }
}

function progressFields(p: SyncProgress): Record<string, string> {
  const done = p.phase === 'verify' ? p.bytesVerified : p.bytesCompared;
  return {
    phase: p.phase === 'verify' ? 'verify ' : 'compare',
    compared: bytes(done),
    size: bytes(p.phase === 'verify' ? p.bytesToVerify : p.bytesTotal),
    sent: bytes(p.bytesSent),
    changed: String(p.blocksChanged),
    rate: bytes(done / Math.max(p.seconds, 0.001)),
  };
}

function bytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

function printSummary(s: SyncSummary): void {
  const what = s.status === 'dry-run' ? 'Would send' : 'Sent';
  process.stdout.write(
    `${what} ${bytes(s.bytes_sent)} for ${s.blocks_changed} changed of ${s.blocks_total} blocks (${s.blocks_zero} zero) of ${bytes(s.bytes_total)} ` +
      `in ${s.seconds.toFixed(1)} s (${bytes(s.bytes_total / Math.max(s.seconds, 0.001))}/s)` +
      (s.blocks_resumed ? `, resumed after ${s.blocks_resumed} confirmed blocks` : '') +
      (s.status === 'dry-run' ? '' : s.verified ? '; destination verified equal to the source' : s.status === 'ok' ? '; not verified' : '') +
      '\n',
  );
}
