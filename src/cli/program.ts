import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type CommandModule = { register(program: Command): void };

/**
 * Every command's module, in help order. Only the invoked command's module is
 * loaded (each pulls in its own world: QEMU drivers, the guest code, sync...),
 * which keeps a command's start-up short; help and unknown commands load all.
 */
const commandModules: Record<string, () => Promise<CommandModule>> = {
  vm: () => import('./commands/vm.js'),
  migrate: () => import('./commands/migrate.js'),
  history: () => import('./commands/history.js'),
  recover: () => import('./commands/recover.js'),
  lab: () => import('./commands/lab.js'),
  demo: () => import('./commands/demo.js'),
  guest: () => import('./commands/guest.js'),
  sync: () => import('./commands/sync.js'),
};

/**
 * The command named in `argv` (node, script, args...) when ferry can tell it
 * without commander: the first argument, after any `--hosts FILE`. Anything
 * else (help, other options, no command) gives undefined.
 */
export function invokedCommand(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  let i = 0;
  while (args[i] === '--hosts' || args[i]?.startsWith('--hosts=')) i += args[i] === '--hosts' ? 2 : 1;
  const name = args[i];
  return name !== undefined && Object.hasOwn(commandModules, name) ? name : undefined;
}

/** ferry's version from its package.json, found above this module (dist/src/cli/ or dist/bundle/). */
export function ferryVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'ferry' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

/** The program for `argv`, with the invoked command's module only, or all of them when it is not plain. */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('ferry')
    .description('Move virtual machines between hosts with local storage')
    .option('--hosts <file>', 'host inventory (default: $FERRY_HOSTS or ~/.config/ferry/hosts.yaml)')
    .version(ferryVersion(), '-V, --version', "print ferry's version")
    .showHelpAfterError()
    // Usage errors exit 2, as ssh and qemu-img do; help exits 0.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

  program
    .command('agent')
    .description('run the per-host agent on stdio (started by ferry itself over the host transport)')
    // main.ts starts the agent before commander loads; this entry is for --help.
    .action(async () => {
      await import('../bin/agent.js');
    });

  const invoked = invokedCommand(argv);
  const names = invoked === undefined ? Object.keys(commandModules) : [invoked];
  const modules = await Promise.all(names.map((name) => commandModules[name]!()));
  for (const m of modules) m.register(program);
  return program;
}
