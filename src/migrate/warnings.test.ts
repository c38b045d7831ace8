import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../util/errors.js';
import { warn, warnRollbackErrors } from './warnings.js';

test('a rollback that failed is a warning with its hint, after the warnings already given', () => {
  const report: { warnings?: string[] } = {};
  warnRollbackErrors(report, []);
  assert.equal(report.warnings, undefined, 'nothing failed: no warnings');
  warn(report, 'first');
  warnRollbackErrors(report, [new FerryError('VM_NOT_RUNNING', 'Domain "web1" was powered off on "kvm1" and is shut off there now', { hint: 'start it there: virsh start web1' })]);
  assert.deepEqual(report.warnings, ['first', 'undoing the move failed: Domain "web1" was powered off on "kvm1" and is shut off there now (start it there: virsh start web1)']);
});
