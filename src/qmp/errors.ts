/** Typed QMP failures: QEMU's own error class, a time-out, or QEMU gone. */
import { FerryError } from '../util/errors.js';

export class QmpError extends FerryError {
  /** QEMU's error class, e.g. "GenericError", "DeviceNotFound". */
  readonly qmpClass: string;
  readonly command: string;

  constructor(command: string, qmpClass: string, desc: string) {
    super('QMP_ERROR', `QEMU refused "${command}": ${desc}`, { details: { qmpClass, command } });
    this.qmpClass = qmpClass;
    this.command = command;
  }
}

export function qmpTimeout(command: string, ms: number): FerryError {
  return new FerryError('QMP_TIMEOUT', `QEMU did not answer "${command}" within ${ms} ms`, {
    hint: 'QEMU may be hung; check the VM with "ferry vm list HOST"',
  });
}

export function qmpClosed(reason: string): FerryError {
  return new FerryError('QMP_CLOSED', `QEMU went away: ${reason}`);
}
