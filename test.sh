#!/usr/bin/env bash
# Runs every test of the project: vet, staticcheck, and the race-enabled
# test suite (unit, end-to-end over loopback, crash tests with SIGKILL).
# On a fresh machine it installs what the tests need (redis-server for the
# Redis benchmark peer's tests) when it can (as root or in CI).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v redis-server >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ]; then
		echo "test.sh: installing redis-server" >&2
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
	else
		echo "test.sh: redis-server is missing; install it (apt-get install redis-server)" >&2
		exit 1
	fi
fi

echo "== go vet" >&2
go vet ./...
echo "== staticcheck" >&2
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "== go test -race" >&2
go test -race -count=1 -timeout 20m "$@" ./...
