#!/usr/bin/env bash
# CI entry of the n8n community package (called by scripts/test.sh):
# install (npm ci), build (@n8n/node-cli), n8n's lint (cloud rules, strict),
# n8n's community-package scanner (source and packed), unit tests, the trigger's
# webhook lifecycle against a real statusflow, then a real n8n
# (the n8n-headless recipe): a workflow run with `n8n execute`
# publishing through the node, and `n8n start` activating / deactivating a
# workflow with the trigger. Exits non-zero on any failure.
#
# The n8n runtime (~1.4 GB) is installed once into STATUSFLOW_N8N_HOME
# (default ~/.cache/statusflow-n8n) and reused while its stamp matches.
# STATUSFLOW_BIN may name a prebuilt server binary; otherwise it is built
# from this repository with `go build`.
set -euo pipefail
cd "$(dirname "$0")"
PKG="$(pwd)"
ROOT="$(cd ../.. && pwd)"
N8N_VERSION=1.123.81
export N8N_HOME="${STATUSFLOW_N8N_HOME:-$HOME/.cache/statusflow-n8n}"
STAMP="n8n@$N8N_VERSION xlsx@0.18.5 langgraph-checkpoint@1.0.0 sqlite3-built node-$(node -p 'process.versions.modules')"
NPM_FLAGS=(--no-audit --no-fund)
t0=$(date +%s)
step() { echo "== n8n: $* ($(( $(date +%s) - t0 ))s)"; }

WORK="$(mktemp -d /tmp/statusflow-n8n-test.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

step "npm ci"
# --ignore-scripts: eslint-plugin-n8n-nodes-base has a preinstall that insists on pnpm.
npm ci "${NPM_FLAGS[@]}" --ignore-scripts

step "build (n8n-node build; parameters from nodes/Statusflow/generated.ts, written by go run ./cmd/nodegen)"
(cd "$ROOT" && go run ./cmd/nodegen -check)
npm run build >/dev/null

step "lint (@n8n/node-cli: n8n's default config with the n8n Cloud rules, strict mode)"
npm run lint

step "n8n's community-package scanner on the source and on the packed package"
npm run test:scan

step "unit tests"
npm test

if [ -z "${STATUSFLOW_BIN:-}" ]; then
	step "go build statusflow"
	(cd "$ROOT" && go build -o "$WORK/statusflow" .)
	export STATUSFLOW_BIN="$WORK/statusflow"
fi

step "trigger lifecycle against statusflow"
node test/trigger.mjs

if [ "$(cat "$N8N_HOME/.statusflow-stamp" 2>/dev/null)" != "$STAMP" ]; then
	step "installing n8n $N8N_VERSION into $N8N_HOME"
	rm -rf "$N8N_HOME.partial"
	mkdir -p "$N8N_HOME.partial"
	(
		cd "$N8N_HOME.partial"
		# overrides: xlsx from the registry (not its CDN), as the recipe says; and
		# @langchain/langgraph-checkpoint 1.0.0, because the newest 1.x needs a
		# newer @langchain/core than n8n pins and `n8n start` fails to load.
		echo '{ "name": "statusflow-n8n-runtime", "private": true, "overrides": { "xlsx": "0.18.5", "@langchain/langgraph-checkpoint": "1.0.0" } }' > package.json
		npm install "n8n@$N8N_VERSION" "${NPM_FLAGS[@]}" --legacy-peer-deps --ignore-scripts
		cd node_modules/sqlite3 && npx --no-install node-gyp rebuild >/dev/null
	)
	echo "$STAMP" > "$N8N_HOME.partial/.statusflow-stamp"
	rm -rf "$N8N_HOME"
	mv "$N8N_HOME.partial" "$N8N_HOME"
else
	step "reusing n8n from $N8N_HOME"
fi

step "real n8n: workflow publishes through the node"
node test/e2e.mjs

step "real n8n: the trigger's webhook lifecycle (n8n start)"
node test/e2e-trigger.mjs

step "all n8n checks passed"
