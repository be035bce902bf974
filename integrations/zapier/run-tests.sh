#!/usr/bin/env bash
# CI entry of the Zapier app (called by scripts/test.sh): install (npm ci),
# check the generated fields and samples are current (go run ./cmd/nodegen
# -check), `zapier-platform validate` on Node 22, then the tests (Node 22):
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

# zapier-platform-cli 19 needs Node >= 22 (package.json "engines"): the npm
# registry serves Node builds as a package, so npx puts one first on PATH for
# the CLI and the tests. --without-style: the style checks call Zapier's
# servers; the structural validation is local.
NODE22=(npx -y -p node@22 -p zapier-platform-cli@19.1.0 --)
step "zapier validate (Node $("${NODE22[@]}" node --version))"
"${NODE22[@]}" zapier-platform validate --without-style

step "tests (Node 22)"
"${NODE22[@]}" npm test

step "all Zapier checks passed"
