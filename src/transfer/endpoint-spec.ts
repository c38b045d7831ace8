/** `[HOST:]PATH` as typed on the command line. */
import { resolve } from 'node:path';

export interface EndpointSpec {
  /** Inventory host name; undefined for this machine. */
  host?: string;
  path: string;
}

export function parseEndpointSpec(spec: string, cwd = process.cwd()): EndpointSpec {
  const m = /^([^/:]+):(.+)$/.exec(spec);
  if (m) return { host: m[1]!, path: m[2]! };
  return { path: resolve(cwd, spec) };
}

export function formatEndpointSpec(e: EndpointSpec): string {
  return e.host ? `${e.host}:${e.path}` : e.path;
}
