/** Guest inspection and fixes on the agent's host, for `ferry guest ... HOST:PATH`. */
import type { FixResult, GuestReport } from '../../guest/mod.js';

// Loaded on first use: the guest code and its YAML parser are a large part
// of the agent, and most agents (migration, sync) never inspect a guest.
const guest = (): Promise<typeof import('../../guest/mod.js')> => import('../../guest/mod.js');

export interface GuestFixParams {
  image: string;
  target?: string;
  dryRun?: boolean;
  macs?: [string, string][];
  uuidMap?: [string, string][];
  restoreUuidsFrom?: string;
  uuidMode?: 'restore' | 'rewrite';
  skip?: string[];
}

export const guestHandlers = {
  'guest.inspect': async (p: { image: string; target?: string; targetMacs?: string[] }): Promise<GuestReport> => (await guest()).inspectImage(p.image, p),

  'guest.fix': async (p: GuestFixParams): Promise<FixResult> => (await guest()).fixImage(p.image, { ...p, macs: new Map(p.macs ?? []), uuidMap: new Map(p.uuidMap ?? []) }),
};
