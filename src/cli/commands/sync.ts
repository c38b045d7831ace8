/** `ferry sync SRC DST`: block delta sync of one disk between two hosts. */
import { Command, Option } from 'commander';
import { AgentClient } from '../../hosts/agent-client.js';
import { findHost, loadInventory, type HostConfig } from '../../hosts/inventory.js';
import { FerryError, asFerryError, formatError } from '../../util/errors.js';
// The controller's modules, not src/sync: the engine's native hashing and
// compression addons run in the agents, and the CLI need not load them.
import { syncDisks } from '../../transfer/sync-controller.js';
import { verifyError, type SyncSummary } from '../../transfer/sync-summary.js';
import { formatEndpointSpec, parseEndpointSpec } from '../../transfer/endpoint-spec.js';
import { trace } from '../../util/trace.js';
import { formatBytes as bytes } from '../live-lines.js';
import { createSyncView, type SyncView } from '../sync-view.js';
import { parseSize } from '../../util/units.js';

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

/** This machine, for a bare PATH. Its listener address matters when it sends to a remote host, which connects to it. */
function localHost(): HostConfig {
  return { name: 'local', transport: 'local', sshOptions: [], address: process.env.FERRY_LOCAL_ADDRESS ?? '127.0.0.1' };
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
    .option('--format <fmt>', "format of a destination image that must be created (default: from its name, .img raw, .qcow2 qcow2; else the source's)")
    .option('--json', 'print one JSON object with the result')
    .option('--hash-threads <n>', 'hashing threads per host (default: cores, at most 4)')
    .action(async (srcText: string, dstText: string, _flags: SyncFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<SyncFlags>();
      const clients: AgentClient[] = [];
      // Bars on a terminal; plain lines on a pipe and with --json, for logs and scripts (stdout keeps only the result).
      const cap = Number(flags.bandwidth);
      const view = createSyncView({ plain: flags.json, route: { from: srcText, to: dstText }, bandwidthBytes: cap > 0 ? cap * (1 << 20) : undefined });
      const onSigint = (): void => {
        view.stop();
        for (const c of clients) c.close();
        process.stderr.write('\nInterrupted. Run the same command with --resume to continue from the last checkpoint.\n');
        process.exit(130);
      };
      process.once('SIGINT', onSigint);
      try {
        const summary = await runSync(srcText, dstText, flags, clients, view);
        if (flags.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else printSummary(summary);
        trace('cli: result out');
        if (summary.status === 'verify-failed') {
          process.stderr.write(formatError(verifyError(summary)) + '\n');
          process.exitCode = 1;
        }
      } catch (e) {
        view.stop();
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

async function runSync(srcText: string, dstText: string, flags: SyncFlags, clients: AgentClient[], view: SyncView): Promise<SyncSummary> {
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
        onProgress: (p) => view.progress(p),
        onWarning: (m) => view.log(`warning: ${m}`),
      },
    );
  } finally {
    view.stop();
  }
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
