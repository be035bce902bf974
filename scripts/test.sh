#!/usr/bin/env bash
# The test command of README.md: sets up what the tests need on a fresh
# machine (FFmpeg, Node packages for the platform checks), then runs every
# Go test with the race detector, and the n8n/Zapier checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
	echo "== installing ffmpeg"
	if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi

# The console's browser test drives Debian's Chromium (console/browser_test.go).
if ! command -v chromium >/dev/null; then
	echo "== installing chromium"
	if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# PostgreSQL and NATS are expected on 127.0.0.1 (README "Tests"); start the
# local packages' servers when they are installed but stopped.
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
	if command -v pg_ctlcluster >/dev/null; then
		echo "== starting PostgreSQL"
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
	fi
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
	if [ -x /usr/sbin/nats-server ]; then
		echo "== starting NATS"
		start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
		sleep 1
	fi
fi

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 30m ./...

echo "== scripts/clients.sh (generated OpenAPI clients)"
./scripts/clients.sh

for check in integrations/check/run.sh integrations/n8n/run-tests.sh integrations/zapier/run-tests.sh; do
	if [ -x "$check" ]; then
		echo "== $check"
		"$check"
	fi
done
echo "== all tests passed"
