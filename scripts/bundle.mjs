// Bundles the compiled CLI, agent and hash worker (tsc's output in dist/src)
// into dist/bundle/, one ESM file each: node then reads one file instead of
// about a hundred modules, which shortens every start. Native addons stay external
// (loaded from node_modules). Run after tsc (npm run build, scripts/setup.sh).
// With --if-stale it does nothing when the bundle is newer than dist/src.
import { build } from 'esbuild';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const entries = {
  // The CLI; `ferry agent` starts the agent from it without loading commander.
  ferry: 'dist/src/cli/main.js',
  // What transports spawn on each host.
  agent: 'dist/src/bin/agent.js',
  // src/sync/hash-pool.ts starts it as new URL('./hash-worker.js', import.meta.url).
  'hash-worker': 'dist/src/sync/hash-worker.js',
};

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : e.name.endsWith('.js') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

function isStale() {
  try {
    const built = Math.min(...Object.keys(entries).map((name) => statSync(join(root, 'dist/bundle', `${name}.js`)).mtimeMs));
    return newestMtime(join(root, 'dist/src')) > built;
  } catch {
    return true;
  }
}

if (!process.argv.includes('--if-stale') || isStale()) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: entries,
    outdir: 'dist/bundle',
    bundle: true,
    // Modules imported with await import() (the guest code, the agent
    // or the commands from the CLI entry) become chunks of their own, read
    // only when used. Chunks sit beside the entries, so URLs relative to
    // import.meta.url resolve alike from any of them.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    metafile: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    // Native addons: their loaders find the .node binary beside them.
    external: ['zstd-napi', 'xxhash-addon'],
    // CommonJS dependencies (commander, vscode-jsonrpc, ...) call require() for
    // node built-ins; an ESM bundle has no require unless given one.
    banner: { js: "import { createRequire as __ferryRequire } from 'node:module'; const require = __ferryRequire(import.meta.url);" },
    plugins: [
      {
        // Loading zstd-napi (its loader, then dlopen) would delay every
        // agent's start, yet it compresses only on slow links. The bundle
        // imports this stand-in, which loads it on the first call.
        // Importing any other name from zstd-napi fails the build here.
        name: 'lazy-zstd',
        setup(b) {
          b.onResolve({ filter: /^zstd-napi$/ }, () => ({ path: 'lazy-zstd', namespace: 'ferry-bundle' }));
          b.onLoad({ filter: /^lazy-zstd$/, namespace: 'ferry-bundle' }, () => ({
            contents: [
              "import { createRequire } from 'node:module';",
              'let zstd;',
              "const load = () => (zstd ??= createRequire(import.meta.url)('zstd-napi'));",
              'export const compress = (...args) => load().compress(...args);',
              'export const decompress = (...args) => load().decompress(...args);',
            ].join('\n'),
            loader: 'js',
          }));
        },
      },
      {
        // In the bundle, import.meta.url is the bundle file itself: the agent
        // to spawn is agent.js beside it, not ../bin/agent.js as in dist/src.
        name: 'agent-entry',
        setup(b) {
          b.onResolve({ filter: /\/agent-entry\.js$/ }, () => ({ path: 'agent-entry', namespace: 'ferry-bundle' }));
          b.onLoad({ filter: /^agent-entry$/, namespace: 'ferry-bundle' }, () => ({
            contents: "export const agentEntryUrl = new URL('./agent.js', import.meta.url);",
            loader: 'js',
          }));
        },
      },
    ],
    logLevel: 'warning',
  });
  // Chunks of earlier builds, once the new files are all in place.
  const current = new Set(Object.keys(result.metafile.outputs).map((f) => f.replace(/^dist\/bundle\//, '')));
  for (const f of readdirSync(join(root, 'dist/bundle'))) {
    if (!current.has(f) && !current.has(f.replace(/\.map$/, ''))) rmSync(join(root, 'dist/bundle', f));
  }
}
