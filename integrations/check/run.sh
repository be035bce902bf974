#!/usr/bin/env bash
# Checks the n8n and Zapier renderings with the real npm packages
# (n8n-workflow, zapier-platform-schema). CI calls it; it exits non-zero on
# any failure. First it checks the golden files are current (the Go test
# fails when a rendering changed without `go test ./nodes -run Render -update`)
# and so are the packages' generated files (go run ./cmd/nodegen).
#
# --ignore-scripts: n8n-workflow pulls isolated-vm (for its expression
# sandbox), whose native build fails on some machines; the node helpers used
# here never load it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
go test -count=1 -run 'Render|Zapier|TestCatalog_Views|TestPackageFiles' ./nodes/
cd "$here"
if [ -f package-lock.json ]; then
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
else
	npm install --no-audit --no-fund --ignore-scripts --loglevel=error
fi
node check.js "$here/../../nodes/testdata"
