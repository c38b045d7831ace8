/**
 * Where this installation's agent entry point lies: beside the compiled
 * sources, dist/src/bin/agent.js. The bundle build (scripts/bundle.mjs)
 * replaces this module with one pointing at the bundled agent, agent.js next
 * to the bundle, since import.meta.url there is the bundle's own file.
 */
export const agentEntryUrl = new URL('../bin/agent.js', import.meta.url);
