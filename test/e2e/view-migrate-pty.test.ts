/**
 * `ferry migrate`'s live view as a user sees it: a test guest (a QEMU
 * process, or a libvirt domain) moves from lab-a to lab-b with the command
 * in a tmux pane of 80 or 120 columns, slowed by --bandwidth to last
 * several seconds, and the screen is read while it runs: no line wider than
 * the pane, an overall line with an ETA above the disk and RAM bars, log
 * lines ("switched over ...") on lines of their own above the bars, never
 * through them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentClient } from '../../src/hosts/agent-client.js';
import { GUEST_APPEND } from '../../src/lab/guest-image.js';
import { CLI, cleanVm, startGuest, stateDir, useLab } from './harness.js';
import { cleanDomain, startDomain } from './libvirt-domains.js';
import { TmuxPane, width, liveLines } from './tmux.js';

let a: AgentClient;
let b: AgentClient;
useLab((hosts) => ({ a, b } = hosts));

const AMOUNT = String.raw`[\d.]+\/[\d.]+ (?:MiB|GiB)`;
/** The overall line: the move's title and the phase (dropped first on a narrow terminal), done of total, then the rates and ETA. */
const OVERALL = new RegExp(String.raw`^(?:[^[]*? {2})?(?:(?:mirror|memory|switchover|finish) {2})?${AMOUNT}(?: of disks)?(?: {2}|$)`);
const ETA = / {2}eta (?:\d+s|\d+m\d\ds|\d+h\d\dm)$/;
const NOTE = String.raw`\+[\d.]+ (?:B|KiB|MiB|GiB)(?: written by the guest(?: during the copy)?| by the guest)?(?:, in sync)?|in sync|pass \d+(?:: resends pages the guest dirtied)?|after the disks`;
/** A bar line and nothing else: a disk's name or RAM, the bar, the percentage, the amount, a note. */
const BAR_LINE = new RegExp(String.raw`^ \S.*? {2}\[[█░]+\] {2}[ \d]{3}% {2} *${AMOUNT}(?: {2}(?:${NOTE}))?$`);
/** The report ferry prints once the view is done: a message of its own, which may wrap. */
const REPORT = /^(?:Migrated | {2}phases: )/;

interface Seen {
  views: number;
  withEta: number;
}

function checkScreen(screen: string[], columns: number, seen: Seen, where: string, switched: string): void {
  const show = `${where}, ${columns} columns:\n${screen.join('\n')}`;
  const { overall, bars } = liveLines(screen, OVERALL, BAR_LINE, show);
  if (overall.length || bars.length) {
    assert.equal(overall.length, 1, `one overall line (${show})`);
    // A bar for the disk, perhaps one for RAM, right below the overall line.
    assert.ok(bars.length >= 1 && bars.length <= 2, `one or two bars (${show})`);
    bars.forEach((line, k) => assert.equal(line, overall[0]! + 1 + k, `the bars right below the overall line (${show})`));
    seen.views++;
    if (ETA.test(screen[overall[0]!]!)) seen.withEta++;
  }
  for (const [i, l] of screen.entries()) {
    const live = i === overall[0] || bars.includes(i);
    if (!live) assert.doesNotMatch(l, /eta \d|\d+% /, `no live text on a log line (${show})`);
    if (/switched over/.test(l)) assert.equal(l, switched, `the log line on a line of its own (${show})`);
    if (!REPORT.test(l) && !TmuxPane.isExitMark(l)) assert.ok(width(l) <= columns, `${width(l)} columns in "${l}" (${show})`);
  }
}

/** A QEMU process or a libvirt domain on lab-a, writing slowly: each record forks, and the forks dirty RAM about as fast as a 4 MiB/s link carries it. */
const GUESTS = {
  qemu: {
    start: (vm: string) => startGuest(a, { name: vm, disks: ['32M'], extraAppend: 'ferry.rate=5' }),
    clean: async (vm: string) => {
      await cleanVm(a, vm);
      await cleanVm(b, vm);
    },
    switched: 'switched over: the VM runs on lab-b',
  },
  libvirt: {
    start: (vm: string) => startDomain(a, vm, ['--disk', '32M', '--append', `${GUEST_APPEND} ferry.rate=5`]),
    clean: (vm: string) => cleanDomain([a, b], vm, 1),
    switched: 'switched over: the domain runs on lab-b',
  },
};

// Both widths for QEMU; the narrower, where lines are cut, for libvirt, whose view comes from libvirt's job statistics.
for (const [driver, columns] of [
  ['qemu', 80],
  ['qemu', 120],
  ['libvirt', 80],
] as const) {
  test(`ferry migrate (${driver}) in a terminal of ${columns} columns: the overall line with an ETA above the bars, logs on lines of their own`, { timeout: 300_000 }, async () => {
    const vm = `e2e-view-${driver}-${columns}`;
    const guest = GUESTS[driver];
    await guest.clean(vm);
    await guest.start(vm);
    const pane = await TmuxPane.start([process.execPath, CLI, 'migrate', vm, '--from', 'lab-a', '--to', 'lab-b', '--bandwidth', '10'], {
      columns,
      rows: 60,
      env: { FERRY_STATE_DIR: stateDir },
    });
    try {
      const seen: Seen = { views: 0, withEta: 0 };
      const { screens, code } = await pane.watch(400, 240_000, (screen, n) => checkScreen(screen, columns, seen, `screen ${n}`, guest.switched));
      const final = screens[screens.length - 1]!;
      assert.equal(code, 0, final.join('\n'));
      assert.ok(seen.views >= 5, `the live view was on ${seen.views} screens only`);
      assert.ok(seen.withEta >= 2, `an ETA on ${seen.withEta} screens only`);
      // The log of the switch-over stays above the view's last frame; the report comes below it.
      const switched = final.indexOf(guest.switched);
      const view = final.findIndex((l) => OVERALL.test(l));
      const report = final.findIndex((l) => l.startsWith(`Migrated ${vm} lab-a -> lab-b`));
      assert.ok(switched >= 0 && view > switched && report > view, final.join('\n'));
      assert.match(final[report - 1]!, BAR_LINE);
    } finally {
      await pane.close();
      await guest.clean(vm);
    }
  });
}
