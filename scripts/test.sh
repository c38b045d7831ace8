#!/usr/bin/env bash
# Runs every test: unit tests and the end-to-end tests with real QEMU, sshd
# and a lab of simulated hosts. End-to-end files share one lab, so test files
# run one at a time.
set -uo pipefail
cd "$(dirname "$0")/.."
# No test makes a TLS connection, and node parses every certificate this
# names at each start: of each test file's process and each ferry command.
unset NODE_EXTRA_CA_CERTS
files=$(find dist -name '*.test.js' -not -path '*/node_modules/*' | sort)
node --test --test-concurrency=1 --test-reporter=spec $files
rc=$?
node dist/bundle/ferry.js lab down >/dev/null 2>&1 || true
exit $rc
