/**
 * A guest a warm move with --reboot powered off or stopped, run again: the
 * same few QMP commands whether the controller does it (a failed cut-over)
 * or the source's agent alone (its controller gone).
 */
export interface Monitor {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
}

/** Undoes set-action shutdown=pause and the pause: boots the guest again if it had shut down, resumes it if stopped. Returns the state it was in. */
export async function runGuestAgain(qmp: Monitor): Promise<string> {
  const { status } = await qmp.execute<{ status: string }>('query-status');
  if (status === 'shutdown') await qmp.execute('system_reset');
  await qmp.execute('set-action', { shutdown: 'poweroff' });
  if (status !== 'running') await qmp.execute('cont');
  return status;
}

/** VM states `cont` leaves. finish-migrate is not one: from there QEMU itself restarts a guest whose migration failed or was cancelled. */
const RESUMABLE = ['paused', 'postmigrate', 'prelaunch', 'suspended'];

/**
 * After a migration ended without the switch-over: waits, polling every
 * `intervalMs` up to `tries` times, for the guest to run again, resuming it
 * once it is in a state `cont` leaves (QEMU restarts it by itself a moment
 * after its migration's status says failed or cancelled, and refuses `cont`
 * meanwhile). Returns the last state seen: `running`, or what it was stuck in.
 */
export async function resumeAfterMigration(qmp: Monitor, tries = 200, intervalMs = 50): Promise<string> {
  let status = 'unknown';
  for (let i = 0; i < tries; i++) {
    ({ status } = await qmp.execute<{ status: string }>('query-status'));
    if (status === 'running') return status;
    if (RESUMABLE.includes(status)) await qmp.execute('cont').catch(() => undefined);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return status;
}
