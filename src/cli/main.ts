#!/usr/bin/env node
/** The ferry command line. One file per command under cli/commands. */
import { buildProgram } from './program.js';

await buildProgram().parseAsync(process.argv);
