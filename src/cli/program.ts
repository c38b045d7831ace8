import { Command } from 'commander';
import { register as registerDemo } from './commands/demo.js';
import { register as registerHistory } from './commands/history.js';
import { register as registerLab } from './commands/lab.js';
import { register as registerMigrate } from './commands/migrate.js';
import { register as registerVm } from './commands/vm.js';
import { register as registerGuest } from './commands/guest.js';
import { register as registerSync } from './commands/sync.js';

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Move virtual machines between hosts with local storage')
    .option('--hosts <file>', 'host inventory (default: $FERRY_HOSTS or ~/.config/ferry/hosts.yaml)')
    .showHelpAfterError()
    // Usage errors exit 2, as ssh and qemu-img do; help exits 0.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

  program
    .command('agent')
    .description('run the per-host agent on stdio (started by ferry itself over the host transport)')
    // main.ts starts the agent before commander loads; this entry is for --help.
    .action(async () => {
      await import('../agent/main.js');
    });

  registerVm(program);
  registerMigrate(program);
  registerHistory(program);
  registerLab(program);
  registerDemo(program);
  registerGuest(program);
  registerSync(program);
  return program;
}
