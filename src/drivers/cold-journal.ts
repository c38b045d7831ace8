/**
 * What a cold move's journal says it had done when its controller went
 * away: enough for `ferry recover` to put the VM back where it ran, or to
 * leave it where it now runs. The steps are the ones migrate/cold.ts and
 * the drivers' cold steps record.
 */
export interface ColdProgress {
  /** The journal is a cold move's. */
  cold: boolean;
  /** ferry powered the VM off on the source. */
  stoppedSource: boolean;
  /** The VM was made on the target (libvirt: defined). */
  madeOnTarget: boolean;
  /** It was started on the target, or reached the commit point. */
  startedOnTarget: boolean;
  /** The source's command line (QEMU), as journaled when the VM was found. */
  sourceArgv?: string[];
}

export function coldProgress(journal: ReadonlyArray<{ step: string; [key: string]: unknown }>): ColdProgress {
  const has = (step: string): boolean => journal.some((e) => e.step === step);
  const argv = journal.find((e) => e.step === 'vm' && Array.isArray(e.argv))?.argv;
  return {
    cold: journal.some((e) => e.step === 'mode' && e.mode === 'cold'),
    // Asked to power off counts: the guest may have finished doing so alone.
    stoppedSource: has('source-stopping') || has('source-shut-down') || has('source-forced-off'),
    madeOnTarget: has('target-defined') || has('target-argv'),
    startedOnTarget: has('target-started') || has('committed'),
    sourceArgv: Array.isArray(argv) ? argv.map(String) : undefined,
  };
}
