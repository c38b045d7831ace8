/** Lab-only checks that must run where the lab guest's disks are. */
import { checkImage, lastCounter, verifyReported } from './records.js';
import { readFile } from 'node:fs/promises';

export const labHandlers = {
  /**
   * Checks the test guest's records on its (stopped) disks against the
   * highest counter it reported on any of the given serial logs.
   */
  'lab.checkRecords': async (p: { disks: string[]; serialLogs: string[]; lastReported?: number; forceShare?: boolean }) => {
    let last = p.lastReported ?? 0;
    for (const log of p.serialLogs) {
      const text = await readFile(log, 'utf8').catch(() => '');
      last = Math.max(last, lastCounter(text));
    }
    const disks = [];
    for (const d of p.disks) disks.push(await checkImage(d, undefined, { forceShare: p.forceShare }));
    const verdict = verifyReported(disks, last);
    // A slot past the last reported record that holds something else (a backing file's data) is not a lost write.
    const corruptReported = verdict.corrupt.filter((c) => c.seq <= last);
    return {
      ...verdict,
      missing: verdict.missing.slice(0, 50),
      missingCount: verdict.missing.length,
      corrupt: verdict.corrupt.slice(0, 50),
      corruptCount: verdict.corrupt.length,
      corruptReported: corruptReported.slice(0, 50),
      corruptReportedCount: corruptReported.length,
      intact: disks.reduce((s, d) => s + d.intact, 0),
      highestSeq: Math.max(0, ...disks.map((d) => d.highestSeq)),
    };
  },
};
