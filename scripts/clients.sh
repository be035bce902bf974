#!/usr/bin/env bash
# Issue 16: the published /openapi.json is the document code generators
# take. Starts statusflow (SQLite, embedded NATS) on a free loopback port,
# fetches its /openapi.json and
#   - generates a Go client with oapi-codegen and one with ogen, builds both;
#   - generates a TypeScript client with @hey-api/openapi-ts, type-checks it;
#   - runs the oapi-codegen client against the server: creates a sandbox
#     instance, publishes a text status, reads the event log
#     (scripts/clients/oapi/main.go), and the TypeScript one likewise
#     (scripts/clients/ts/check.ts).
# Tools: `go run pkg@version` (module cache), npm packages cached in
# ${STATUSFLOW_TOOLS:-~/.cache/statusflow-tools}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OAPI_CODEGEN=github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2
OGEN=github.com/ogen-go/ogen/cmd/ogen@v1.24.0
HEYAPI=@hey-api/openapi-ts@0.94.5 # the last release for Node 20 (0.96 needs Node 22.13)
TYPESCRIPT=typescript@5.9.3
TOOLS=${STATUSFLOW_TOOLS:-$HOME/.cache/statusflow-tools}

WORK=$(mktemp -d)
PID=
cleanup() {
	if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== clients: building statusflow"
go build -o "$WORK/statusflow" .
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
TOKEN=sfa_clients_$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')
STATUSFLOW_ADDR=127.0.0.1:$PORT STATUSFLOW_DATA_DIR="$WORK/data" STATUSFLOW_ACCOUNT_TOKEN=$TOKEN \
	STATUSFLOW_NATS_LISTEN=127.0.0.1:$(free_port) "$WORK/statusflow" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 150); do
	if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "$PID" 2>/dev/null; then cat "$WORK/server.log"; echo "statusflow exited"; exit 1; fi
	sleep 0.2
done
curl -fsS "$BASE/openapi.json" >"$WORK/openapi.json"

# Go modules for the generated code: the generators' runtime libraries
# come through the Go proxy (or the module cache).
gomod() { # dir module
	mkdir -p "$1"
	(cd "$1" && printf 'module %s\n\ngo 1.24\n' "$2" >go.mod)
}

echo "== clients: oapi-codegen"
gomod "$WORK/oapi" oapiclient
cp scripts/clients/oapi/main.go "$WORK/oapi/main.go"
(cd "$WORK/oapi" && go run "$OAPI_CODEGEN" -generate types,client -package main -o client.gen.go "$WORK/openapi.json" &&
	go mod tidy >/dev/null 2>&1 && sed -i "/^\/\/go:build/d" main.go && go build -o oapi . )
"$WORK/oapi/oapi" "$BASE" "$TOKEN"

echo "== clients: ogen"
gomod "$WORK/ogen" ogenclient
cp scripts/clients/ogen/main.go "$WORK/ogen/main.go"
(cd "$WORK/ogen" && go run "$OGEN" -package api -target api -clean "$WORK/openapi.json" >ogen.log 2>&1 || { cat ogen.log; exit 1; }
	go mod tidy >/dev/null 2>&1 && sed -i "/^\/\/go:build/d" main.go && go build -o ogen . )
"$WORK/ogen/ogen" "$BASE" "$TOKEN"

echo "== clients: @hey-api/openapi-ts"
mkdir -p "$TOOLS/ts"
if [ ! -x "$TOOLS/ts/node_modules/.bin/openapi-ts" ] || [ ! -x "$TOOLS/ts/node_modules/.bin/tsc" ] || ! grep -q "\"${HEYAPI##*@}\"" "$TOOLS/ts/node_modules/@hey-api/openapi-ts/package.json" 2>/dev/null; then
	(cd "$TOOLS/ts" && { [ -f package.json ] || echo '{"private":true}' >package.json; } && npm install --no-audit --no-fund --silent "$HEYAPI" "$TYPESCRIPT" >/dev/null)
fi
mkdir -p "$WORK/ts"
cp scripts/clients/ts/check.ts scripts/clients/ts/tsconfig.json "$WORK/ts/"
ln -s "$TOOLS/ts/node_modules" "$WORK/ts/node_modules"
(cd "$WORK/ts" && ./node_modules/.bin/openapi-ts -i "$WORK/openapi.json" -o client -c @hey-api/client-fetch >gen.log 2>&1 || { cat gen.log; exit 1; }
	./node_modules/.bin/tsc -p tsconfig.json && node dist/check.js "$BASE" "$TOKEN")
echo "== clients: all generated, compiled and called"
