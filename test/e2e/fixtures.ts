/**
 * Builds the slow fixtures before the tests start (scripts/test.sh): the
 * test files that need them run side by side, and would otherwise each build
 * them at once on a machine whose cache is empty.
 */
import { ensureTestGuest } from '../../src/lab/guest-image.js';
import { ensureDebianGuest } from './debian-guest.js';

await Promise.all([ensureTestGuest(), ensureDebianGuest()]);
