/**
 * Runs virsh against one libvirt connection and turns its failures into
 * FerryErrors that say what to do on this host.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { thisHost } from '../../../agent/host-name.js';
import { FerryError, type ErrorCode } from '../../../util/errors.js';
import { run, type RunResult } from '../../../util/exec.js';
import { classifyVirshFailure, parseNameList, type VirshFailure, type VirshFailureKind } from '../virsh-output.js';

/** libvirt's system connection to QEMU on this host, which a URI given by the caller replaces. */
export const DEFAULT_URI = 'qemu:///system';

/** Long enough for a define or a start; a daemon that answers nothing in that time is stuck. */
const _TIMEOUT_MS = 60_000;

export interface VirshOptions {
  /** Failures the caller handles itself: they come back as a result with exitCode set, not as an error. */
  tolerate?: VirshFailureKind[];
  timeoutMs?: number;
}

export interface VirshResult extends RunResult {
  /** Set when the command failed in a way the caller tolerates. */
  failure?: VirshFailure;
}

/** `virsh -c URI ARGS...`; a failure not tolerated throws a FerryError with a hint. */
export async function virsh(uri: string | undefined, args: readonly string[], options: VirshOptions = {}): Promise<VirshResult> {
  const connection = uri ?? DEFAULT_URI;
  const r = await run('virsh', ['-c', connection, ...args], { allowFailure: true, timeoutMs: options.timeoutMs ?? _TIMEOUT_MS });
  if (r.exitCode === 0) return r;
  const failure = classifyVirshFailure(r.stderr || r.stdout);
  if (options.tolerate?.includes(failure.kind)) return { ...r, failure };
  throw await virshFailureError(connection, args, { ...r, failure });
}

/**
 * Runs several virsh commands in one virsh process: each result as if the
 * command had run alone (virsh goes on after a failed one), failures handled
 * as `virsh` does. Starting virsh and connecting costs about as much as a
 * query, and a move's checks ask several at once on a busy host.
 */
export async function virshBatch(uri: string | undefined, commands: ReadonlyArray<readonly string[]>, options: VirshOptions = {}): Promise<VirshResult[]> {
  if (commands.length <= 1) return Promise.all(commands.map((c) => virsh(uri, c, options)));
  const connection = uri ?? DEFAULT_URI;
  // Between two commands, a line of its own on each stream (echo --err writes "error: MARK" there, and an empty line on stdout).
  const mark = `ferry-end-${randomUUID()}`;
  const script = commands.map((c) => c.map(quoteVirshArg).join(' ')).join(` ; echo ${mark} ; echo --err ${mark} ; `);
  const r = await run('virsh', ['-c', connection, script], { allowFailure: true, timeoutMs: options.timeoutMs ?? _TIMEOUT_MS });
  // After the first, each command's stdout starts with echo --err's empty line.
  const outs = splitAtLine(r.stdout, mark).map((lines, i) => (i > 0 && lines[0] === '' ? lines.slice(1) : lines).join('\n'));
  const errs = splitAtLine(r.stderr, `error: ${mark}`).map((lines) => lines.join('\n'));
  const results: VirshResult[] = commands.map((args, i) => {
    const command = ['virsh', '-c', connection, ...args].join(' ');
    // virsh stopped before this command (it could not connect, or was killed): its failure is the batch's.
    if (outs.length !== commands.length || errs.length !== commands.length) return { ...r, command, exitCode: r.exitCode || 1 };
    const stderr = errs[i]!;
    return { ...r, command, stdout: outs[i]!, stderr, exitCode: /^error: /m.test(stderr) ? 1 : 0 };
  });
  for (const [i, result] of results.entries()) {
    if (result.exitCode === 0) continue;
    const failure = classifyVirshFailure(result.stderr || result.stdout);
    if (!options.tolerate?.includes(failure.kind)) throw await virshFailureError(connection, commands[i]!, { ...result, failure });
    result.failure = failure;
  }
  return results;
}

/** One argument in virsh's own command syntax: double-quoted, backslash escaping (as in a shell). */
function quoteVirshArg(arg: string): string {
  return `"${arg.replace(/["\\]/g, '\\$&')}"`;
}

/** The lines of `text` between the lines that are exactly `separator`, each group joined again. */
function splitAtLine(text: string, separator: string): string[][] {
  const groups: string[][] = [[]];
  for (const line of text.split('\n')) {
    if (line === separator) groups.push([]);
    else groups[groups.length - 1]!.push(line);
  }
  return groups;
}

/** Runs `fn` with `xml` in a file of its own (virsh reads XML from files), removed afterwards. */
export async function withXmlFile<T>(xml: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-virsh-'));
  try {
    const path = join(dir, 'input.xml');
    await writeFile(path, xml);
    return await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The FerryError for a failed virsh command: what failed on which host, and what to do about it. */
export async function virshFailureError(uri: string | undefined, args: readonly string[], r: RunResult & { failure?: VirshFailure }): Promise<FerryError> {
  const failure = r.failure ?? classifyVirshFailure(r.stderr || r.stdout);
  uri ??= DEFAULT_URI;
  const host = thisHost();
  const details = { command: r.command, exitCode: r.exitCode, stderr: r.stderr };
  const error = (code: ErrorCode, message: string, hint: string) => new FerryError(code, message, { hint, details });
  switch (failure.kind) {
    case 'unreachable':
      return error('UNREACHABLE', `Cannot reach libvirt at "${uri}" on ${host}: ${failure.message}`, `start libvirtd on ${host} ("systemctl start libvirtd"), or give the URI of one that runs`);
    case 'no-domain': {
      const names = await virsh(uri, ['list', '--all', '--name']).then(
        (list) => parseNameList(list.stdout),
        () => [],
      );
      const domain = /domain '([^']*)'/.exec(failure.message)?.[1] ?? args[args.length - 1] ?? '';
      return error('UNKNOWN_VM', `Unknown domain "${domain}" on ${host} (${uri})`, names.length ? `domains there: ${names.join(', ')}` : `libvirt at "${uri}" has no domain`);
    }
    case 'not-running':
      return error('VM_NOT_RUNNING', `Cannot ${args[0]} on ${host}: ${failure.message}`, 'start the domain first ("virsh start DOMAIN"), or act on its definition instead');
    case 'already-running':
      return error('IN_USE', `Cannot ${args[0]} on ${host}: ${failure.message}`, 'the domain runs already; stop it first if it must start anew');
    case 'exists':
      return error('TARGET_EXISTS', `Cannot define the domain on ${host}: ${failure.message}`, 'a domain of that name or UUID is defined there: undefine it first, or give the VM another name');
    case 'cpu-incompatible':
      return error(
        'INCOMPATIBLE',
        `Cannot ${args[0]} on ${host}: ${failure.message}`,
        'give the domain a CPU model both hosts provide (compare with libvirt.cpuCompare), or drop the features it names',
      );
    case 'no-storage':
      return error('NOT_FOUND', `Cannot ${args[0]} on ${host}: ${failure.message}`, 'a disk of the domain is missing on this host: copy it there first, or point the domain at where it is');
    default:
      return error(
        'COMMAND_FAILED',
        `Command "virsh ${args.join(' ')}" failed on ${host}: ${failure.message || `exit code ${r.exitCode}`}`,
        'see the libvirt message above; "virsh -c URI ..." by hand shows the same',
      );
  }
}
