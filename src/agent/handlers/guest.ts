/** Guest inspection and fixes on the agent's host, for `ferry guest ... HOST:PATH`. */
import { fixImage, inspectImage, type FixResult, type GuestReport } from '../../guest/mod.js';

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
  'guest.inspect': async (p: { image: string; target?: string; targetMacs?: string[] }): Promise<GuestReport> => inspectImage(p.image, p),

  'guest.fix': async (p: GuestFixParams): Promise<FixResult> =>
    fixImage(p.image, { ...p, macs: new Map(p.macs ?? []), uuidMap: new Map(p.uuidMap ?? []) }),
};
