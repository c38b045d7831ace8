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
