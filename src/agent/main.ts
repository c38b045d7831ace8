#!/usr/bin/env node
/**
 * The agent's own entry point, started by ferry over each host's transport.
 * It loads the handlers and the RPC layer only: no commander, no command
 * modules, so the first answer comes as early as node allows.
 */
import { trace } from '../util/trace.js';
import { serveAgent } from './server.js';

trace('agent: loaded');

await serveAgent(process.stdin, process.stdout);
process.exit(0);
