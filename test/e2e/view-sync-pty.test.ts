/**
 * `ferry sync`'s live view as a user sees it: the command runs in a tmux
 * pane of 80 or 120 columns between the loopback hosts ha and hb, slowed
 * by --bandwidth to last a few seconds, and the screen is read while it
 * runs: no line wider than the pane, an overall line with an ETA above the
 * bar, log lines (a warning, the summary) on lines of their own.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { CLI } from './cli.js';
import { makeImage, makeLab, type Lab } from './sync-helpers.js';
import { TmuxPane, width, liveLines } from './tmux.js';

const SIZE_MIB = 1536;
/** Random data in three places (120 MiB), the rest holes: about 6 s at 20 MiB/s. */
const DATA: Array<[number, number]> = [
  [0, 40],
  [500, 40],
  [1400, 40],
];

let lab: Lab;
let src: string;
before(async () => {
  lab = await makeLab('view-pty');
  src = `${lab.dir}/a-rather-long-image-name-for-the-live-view-test.img`;
  await makeImage(src, SIZE_MIB, DATA);
});
after(async () => {
  await lab.cleanup();
});

const OVERALL = /^(?:.+ -> .+ {2})?(?:comparing|compare|verifying|verify|done) {2}[\d.]+\/[\d.]+ (?:MiB|GiB)(?: {2}|$)/;
const ETA = / {2}eta (?:\d+s|\d+m\d\ds|\d+h\d\dm)$/;
/** A bar line and nothing else: its label, the bar, the percentage, the blocks. */
const BAR_LINE = /^ (?:compare|verify |done {3}) {2}\[[█░]+\] {2}[ \d]{3}%(?: {2}\d+(?: of \d+)?(?: blocks)? changed(?:, \d+ written)?)?$/;

interface Seen {
  overall: number;
  withEta: number;
}

/** Checks one screen; counts what it saw. */
function checkScreen(screen: string[], columns: number, seen: Seen, where: string): void {
  const show = `${where}, ${columns} columns:\n${screen.join('\n')}`;
  const { overall, bars } = liveLines(screen, OVERALL, BAR_LINE, show);
  if (bars.length || overall.length) {
    // One overall line, the bar right below it: nothing left of earlier frames.
    assert.equal(overall.length, 1, `one overall line (${show})`);
    assert.deepEqual(bars, [overall[0]! + 1], `the bar right below the overall line (${show})`);
    seen.overall++;
    if (ETA.test(screen[overall[0]!]!)) seen.withEta++;
    for (const i of [overall[0]!, bars[0]!]) assert.ok(width(screen[i]!) <= columns, `${width(screen[i]!)} columns in "${screen[i]}" (${show})`);
  }
  // The lines above the view and below it: the view's own lines are never among them.
  for (const [i, l] of screen.entries()) {
    if (i === overall[0] || bars.includes(i)) continue;
    assert.doesNotMatch(l, /eta \d|\d+% /, `no live text on a log line (${show})`);
    // Only the summary, a message of its own printed once the view is done, may wrap.
    if (!l.startsWith('Sent ') && !TmuxPane.isExitMark(l)) assert.ok(width(l) <= columns, `${width(l)} columns in "${l}" (${show})`);
  }
}

async function syncInPane(columns: number, dst: string, options: { resizeTo?: number; extra?: string[] } = {}): Promise<{ screens: string[][]; final: string[] }> {
  const pane = await TmuxPane.start([process.execPath, CLI, 'sync', '--bandwidth', '20', ...(options.extra ?? []), `ha:${src}`, `hb:${dst}`], {
    columns,
    env: lab.env as Record<string, string>,
  });
  try {
    let now = columns;
    const seen: Seen = { overall: 0, withEta: 0 };
    const { screens, code } = await pane.watch(400, 120_000, async (screen, n) => {
      checkScreen(screen, now, seen, `screen ${n}`);
      if (options.resizeTo && n === 6) {
        await pane.resize(options.resizeTo);
        now = options.resizeTo;
      }
    });
    const final = screens[screens.length - 1]!;
    assert.equal(code, 0, final.join('\n'));
    assert.ok(seen.overall >= 5, `the live view was on ${seen.overall} screens only`);
    assert.ok(seen.withEta >= 2, `an ETA on ${seen.withEta} screens only`);
    return { screens, final };
  } finally {
    await pane.close();
  }
}

for (const columns of [80, 120]) {
  test(`ferry sync in a terminal of ${columns} columns: the overall line with an ETA above the bar, nothing wider than the terminal`, async () => {
    const { final } = await syncInPane(columns, `${lab.dir}/copy-${columns}.img`);
    // The view's last frame stays, and the summary comes below it on a line of its own.
    const summary = final.findIndex((l) => l.startsWith('Sent 120.0 MiB for 120 changed of 1536 blocks'));
    assert.ok(summary > 0, final.join('\n'));
    assert.match(final[summary - 1]!, BAR_LINE);
    assert.match(final[summary - 2]!, OVERALL);
  });
}

test('a warning goes above the live view, on a line of its own', async () => {
  // An existing destination with no checkpoint: --resume warns, then compares everything.
  const dst = `${lab.dir}/warned.img`;
  await fs.writeFile(dst, '');
  await fs.truncate(dst, SIZE_MIB * (1 << 20));
  const { screens } = await syncInPane(80, dst, { extra: ['--resume'] });
  const during = screens.find((s) => s.some((l) => /[█░]/.test(l)))!;
  const warning = during.findIndex((l) => l.startsWith('warning: No usable checkpoint on the destination'));
  assert.ok(warning >= 0, during.join('\n'));
  assert.ok(during.findIndex((l) => OVERALL.test(l)) > warning, `the warning above the view:\n${during.join('\n')}`);
});

test('a terminal narrowed from 120 to 80 columns while ferry sync runs gets the view redrawn to fit, with nothing left of the wider one', async () => {
  await syncInPane(120, `${lab.dir}/resized.img`, { resizeTo: 80 });
});
