#!/usr/bin/env bash
# Runs every test: unit tests and the end-to-end tests with real QEMU, sshd
# and a lab of simulated hosts, in two streams side by side. The files that
# use the lab share it, so they run one at a time; the others (unit tests,
# sync between loopback agents, guest images) run beside them, on the second
# core the lab's files leave idle about half of the time.
set -uo pipefail
cd "$(dirname "$0")/.."
# No test makes a TLS connection, and node parses every certificate this
# names at each start: of each test file's process and each ferry command.
unset NODE_EXTRA_CA_CERTS

# Both streams need the slow fixtures; built once, before either starts. A
# build that fails here fails again, with its reason, in each test that
# needs the fixture; the others run.
node dist/test/e2e/fixtures.js || echo "test fixtures: a build failed; the tests that need it will say why" >&2

all=$(find dist -name '*.test.js' -not -path '*/node_modules/*' | sort)
lab=$(grep -lE 'useLab\(|await lab\(\)' $all)
rest=$(grep -LE 'useLab\(|await lab\(\)' $all)

beside=$(mktemp /tmp/ferry-test-beside.XXXXXX)
labout=$(mktemp /tmp/ferry-test-lab.XXXXXX)
node --test --test-concurrency=1 --test-reporter=spec $rest >"$beside" 2>&1 &
beside_pid=$!
node --test --test-concurrency=1 --test-reporter=spec $lab 2>&1 | tee "$labout"
rc_lab=${PIPESTATUS[0]}
node dist/bundle/ferry.js lab down >/dev/null 2>&1 || true
wait "$beside_pid"
rc_beside=$?
echo "--- the tests that ran beside the lab's:"
cat "$beside"
# A log is read from its end: the lab's failures, whose report scrolled by
# above the other stream's, are repeated last.
if [ "$rc_lab" -ne 0 ]; then
  echo "--- the lab's failures again:"
  sed -n '/failing tests:/,$p' "$labout"
fi
rm -f "$beside" "$labout"
[ "$rc_lab" -eq 0 ] && [ "$rc_beside" -eq 0 ]
