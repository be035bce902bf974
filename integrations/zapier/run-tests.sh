#!/usr/bin/env bash
# CI entry of the Zapier app (called by scripts/test.sh): install (npm ci),
# check the generated fields and samples are current (go run ./cmd/nodegen
# -check), then the tests:
# validateAppDefinition, and createAppTester running the authentication test,
# the creates and a REST-hook trigger against a real statusflow on loopback.
# STATUSFLOW_BIN may name a prebuilt server binary; otherwise it is built from
# this repository with `go build`. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
t0=$(date +%s)
step() { echo "== zapier: $* ($(( $(date +%s) - t0 ))s)"; }

WORK="$(mktemp -d /tmp/statusflow-zapier-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

step "npm ci"
npm ci --no-audit --no-fund

step "generated/app.json is current"
(cd "$ROOT" && go run ./cmd/nodegen -check)

if [ -z "${STATUSFLOW_BIN:-}" ]; then
	step "go build statusflow"
	(cd "$ROOT" && go build -o "$WORK/statusflow" .)
	export STATUSFLOW_BIN="$WORK/statusflow"
fi

step "tests"
npm test

step "all Zapier checks passed"
