#!/usr/bin/env node
/** The ferry command line. One file per command under cli/commands. */

// `ferry agent` is what ssh hosts run: start it without loading commander and
// every command's modules, which would only slow its start-up.
import { trace } from '../util/trace.js';

trace(`cli: started (${process.argv[2] ?? ''})`);
if (process.argv[2] === 'agent' && process.argv.length === 3) {
  await import('../bin/agent.js');
} else {
  const { buildProgram, invokedCommand } = await import('./program.js');
  const early = invokedCommand(process.argv) === 'migrate' ? await import('./early-agents.js') : undefined;
  early?.startMigrationAgents(process.argv);
  const program = await buildProgram(process.argv);
  trace('cli: program loaded');
  await program.parseAsync(process.argv);
  // Only a command that started agents early has any to close; the others load nothing more.
  early?.closeUnusedAgents();
}
