/**
 * The direction data flows in (docs/architecture.md): cli -> migrate ->
 * drivers, storage, sync -> hosts -> agent. `npm run lint` refuses an import
 * against it, and any cycle.
 */
const layer = (from, forbidden, comment) => ({
  name: `${from}-not-to-${forbidden.join('-')}`,
  comment,
  severity: 'error',
  from: { path: `^src/${from}/` },
  to: { path: `^src/(${forbidden.join('|')})/` },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'modules depend on each other one way', from: {}, to: { circular: true } },
    layer('agent', ['bin', 'cli', 'migrate', 'drivers', 'hosts', 'lab', 'transfer'], 'the agent knows its RPC server and generic handlers; drivers and the lab add their areas from above'),
    layer('hosts', ['bin', 'cli', 'migrate', 'drivers', 'lab', 'transfer'], 'reaching hosts knows nothing of what runs there'),
    layer('drivers', ['bin', 'cli', 'migrate', 'lab', 'transfer'], 'drivers supply steps; the flow that runs them is in migrate/'),
    layer('migrate', ['bin', 'cli', 'lab'], 'the migration flow is driven by the CLI, not the other way'),
    layer('storage', ['bin', 'cli', 'migrate', 'drivers', 'hosts', 'lab', 'transfer', 'sync', 'agent'], 'storage is a leaf below sync and the agent'),
    layer('sync', ['bin', 'cli', 'migrate', 'drivers', 'hosts', 'lab', 'transfer', 'agent'], 'the sync engine runs inside an agent, it does not call one'),
    layer('util', ['bin', 'cli', 'migrate', 'drivers', 'hosts', 'lab', 'transfer', 'sync', 'agent', 'storage', 'guest', 'qmp'], 'util depends on nothing of ferry'),
    {
      name: 'lab-only-from-cli',
      comment: 'the lab is a test bench: only its commands and the entry points use it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|bin|lab)/' },
      to: { path: '^src/lab/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
