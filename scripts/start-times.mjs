// Start-up latency of ferry, several variants measured in turn (the machine
// is shared and noisy, so rounds interleave them). Prints one JSON line per
// variant: median, min and max in ms.
//
//   node scripts/start-times.mjs [--source-mib N] ROUNDS LABEL=KIND:COMMAND ...
//
// KIND is one of
//   wall   wall time of COMMAND             wall:bin/ferry --help
//   agent  spawn to first RPC answer        agent:node dist/bundle/agent.js
//   sync   `ENTRY sync --json` of a fresh file (1 MiB of random data, or
//          --source-mib N) between two local hosts
//                                           sync:dist/bundle/ferry.js
//   inspect  the same sync, timed (with FERRY_TRACE) from its start until both
//          agents have begun `sync.inspect`: the start-up cost of a sync
//                                           inspect:dist/bundle/ferry.js
//   send   the same, until the source agent begins sending ("send: start")
//                                           send:dist/bundle/ferry.js
// e.g. node scripts/start-times.mjs 15 help=wall:bin/ferry\ --help agent=agent:bin/ferry\ agent sync=sync:dist/bundle/ferry.js
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
let sourceMiB = 1;
if (args[0] === '--source-mib') {
  sourceMiB = Number(args[1]);
  args.splice(0, 2);
}
const rounds = Number(args[0]);
const variants = args.slice(1).map((text) => {
  const m = /^([^=]+)=(wall|agent|sync|inspect|send):(.+)$/.exec(text);
  if (!m) throw new Error(`Invalid variant "${text}": write LABEL=wall|agent|sync|inspect|send:COMMAND`);
  return { label: m[1], kind: m[2], argv: m[3].split(' '), times: [] };
});
if (!rounds || !(sourceMiB > 0) || variants.length === 0) throw new Error('usage: node scripts/start-times.mjs [--source-mib N] ROUNDS LABEL=KIND:COMMAND ...');

const work = mkdtempSync(join(tmpdir(), 'ferry-start-times-'));
writeFileSync(join(work, 'hosts.yaml'), 'hosts:\n  ha: { transport: local, address: 127.0.0.2 }\n  hb: { transport: local, address: 127.0.0.3 }\n');
writeFileSync(join(work, 'src.img'), randomFillSync(Buffer.alloc(sourceMiB << 20)));

const request = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'system.facts', params: null });
const framed = `Content-Length: ${Buffer.byteLength(request)}\r\n\r\n${request}`;

function firstAnswer(argv) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.write(framed);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /Content-Length: (\d+)\r\n\r\n/.exec(out);
      if (!m || out.length < m.index + m[0].length + Number(m[1])) return;
      const ms = performance.now() - started;
      if (!JSON.parse(out.slice(m.index + m[0].length)).result?.hostname) return reject(new Error(`Unexpected answer: ${out}`));
      child.stdin.end();
      child.on('exit', () => resolve(ms));
    });
    child.on('error', reject);
  });
}

function wall(argv, env) {
  const started = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.status !== 0) throw new Error(`"${argv.join(' ')}" failed with exit code ${r.status}: ${r.stderr}`);
  return performance.now() - started;
}

function sync(entry, traceFile) {
  rmSync(join(work, 'state'), { recursive: true, force: true });
  rmSync(join(work, 'dst.img'), { force: true });
  const env = { ...process.env, FERRY_HOSTS: join(work, 'hosts.yaml'), FERRY_SYNC_STATE_DIR: join(work, 'state'), FERRY_LAB_DIR: join(work, 'no-lab') };
  if (traceFile) env.FERRY_TRACE = traceFile;
  return wall([process.execPath, entry, 'sync', '--json', `ha:${join(work, 'src.img')}`, `hb:${join(work, 'dst.img')}`], env);
}

// From just before the CLI is spawned until the last of `count` processes
// traces a line matching `label` (after its epoch-ms and pid).
function untilTraced(entry, label, count) {
  const traceFile = join(work, 'trace.log');
  rmSync(traceFile, { force: true });
  const started = performance.timeOrigin + performance.now();
  sync(entry, traceFile);
  const lines = readFileSync(traceFile, 'utf8')
    .split('\n')
    .map((line) => /^(\S+) (\d+) (.*)$/.exec(line))
    .filter((m) => m !== null && label.test(m[3]));
  if (new Set(lines.map((m) => m[2])).size !== count) throw new Error(`Expected ${count} processes to trace ${label} in ${traceFile}`);
  return Math.max(...lines.map((m) => Number(m[1]))) - started;
}

try {
  for (let i = 0; i < rounds; i++) {
    for (const v of variants) {
      const kinds = {
        agent: () => firstAnswer(v.argv),
        sync: () => sync(v.argv[0]),
        inspect: () => untilTraced(v.argv[0], /^inspect \//, 2),
        send: () => untilTraced(v.argv[0], /^send: start$/, 1),
        wall: () => wall(v.argv),
      };
      v.times.push(await kinds[v.kind]());
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
for (const v of variants) {
  const t = v.times.sort((a, b) => a - b);
  console.log(JSON.stringify({ variant: v.label, rounds, median_ms: Math.round(t[rounds >> 1]), min_ms: Math.round(t[0]), max_ms: Math.round(t[rounds - 1]) }));
}
