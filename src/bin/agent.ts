#!/usr/bin/env node
/**
 * The agent's own entry point, started by ferry over each host's transport.
 * It loads the handlers and the RPC layer only: no commander, no command
 * modules, so the first answer comes as early as node allows. It composes
 * the agent: the generic areas, every driver's host side, and the lab's
 * checks on a lab host only.
 */
import { existsSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { addAreas } from '../agent/registry.js';
import { serveAgent } from '../agent/server.js';
import { driverHostAreas } from '../drivers/host-areas.js';
import { LAB_HOST_MARKER, labHostAreas } from '../lab/host-areas.js';
import { trace } from '../util/trace.js';

// The agent's JavaScript only steers native work (reads, hashes, writes and
// the network are native): V8's optimizing compiler would gain little and
// take CPU from the threads that read and hash.
setFlagsFromString('--max-opt=1');

addAreas(driverHostAreas);
if (existsSync(LAB_HOST_MARKER)) addAreas(labHostAreas);

trace('agent: loaded');

// The controller, or the ssh link to it, may vanish while a migration's guard
// still has work to finish here: a hang-up or a broken pipe must not end it.
process.on('SIGHUP', () => undefined);
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

await serveAgent(process.stdin, process.stdout);
trace('agent: exit');
process.exit(0);
