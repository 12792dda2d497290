#!/usr/bin/env bash
# bench/run.sh — durable side by side with Redis and workerd, on loopback.
#
# Sets up what it needs on a fresh Debian machine (redis-server, node/npm,
# workerd via npm ci, Go builds), then for every scenario runs each server
# in turn, fresh and with empty storage, under the same load generator, and
# prints one table: ops/s and p99 per server and durable ÷ each peer.
# docs-fanout (a PUT of a document delivered to its 1,000 WebSocket clients)
# runs on durable and durable-base only: the peers have no /v1/docs, so their
# cells show "-" and no ratio.
#
# Servers:
#   durable          go run ./cmd/durable serve (built once), "not built yet" if absent
#   durable-base     the same built from git ref BENCH_BASELINE (only with it)
#   redis-always     bench/redispeer on redis-server, appendonly yes, appendfsync always
#   redis-everysec   the same with appendfsync everysec (for reference)
#   workerd          bench/workerd on workerd, SQLite Durable Objects on local disk
#
# Settings (environment):
#   BENCH_DURATION   measured time per run            (default 10s)
#   BENCH_WARMUP     unmeasured warmup per run        (default 1s)
#   BENCH_CONNS      concurrent connections           (default 16)
#   BENCH_REPS       repetitions; order alternates    (default 1)
#   BENCH_SCENARIOS  space-separated scenario names   (default: all six)
#   BENCH_SERVERS    space-separated server names     (default: all four,
#                    and durable-base after durable if BENCH_BASELINE is set)
#   BENCH_BASELINE   git ref (HEAD~3, a tag, a hash) to build ./cmd/durable
#                    from as server durable-base: same flags, fresh data dir,
#                    alternating with the others, for before/after figures in
#                    one run. The tree is exported with git archive into the
#                    temp dir (nothing is written to the repository) and
#                    deleted on exit; a ref that does not build is reported
#                    like a missing server. durable is the working tree.
#   BENCH_OUT        directory for the raw results    (default: a temp dir)
#   BENCH_DURABLE_FLAGS  extra flags for durable serve, e.g. "--sync fdatasync"
#   BENCH_NOFILE     open-file limit to raise to if lower (default 65536;
#                    0 leaves it): durable keeps ~3 descriptors per object in
#                    memory and caps --max-active to fit (docs/operations.md)
#
# Defaults take about 4½ minutes (5 scenarios × 4 servers + docs-fanout on
# durable, × ~12 s) after setup.
# Everything listens on 127.0.0.1 and is killed on exit.
set -euo pipefail

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-1s}
CONNS=${BENCH_CONNS:-16}
REPS=${BENCH_REPS:-1}
SCENARIOS=${BENCH_SCENARIOS:-"ratelimit-one ratelimit-10k lock-cycle session-create session-get docs-fanout"}
BASE_REF=${BENCH_BASELINE:-}
if [ -n "$BASE_REF" ]; then
	SERVERS=${BENCH_SERVERS:-"durable durable-base redis-always redis-everysec workerd"}
else
	SERVERS=${BENCH_SERVERS:-"durable redis-always redis-everysec workerd"}
fi
DURABLE_FLAGS=${BENCH_DURABLE_FLAGS:-}
NOFILE=${BENCH_NOFILE:-65536}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/durable-bench.XXXXXX")
OUT=${BENCH_OUT:-$WORK/results}
mkdir -p "$OUT" "$WORK/bin" "$WORK/done"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
LOADLOG=$OUT/load.txt
: >"$LOADLOG"

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK/run" "$WORK/bin" "$WORK/done" "$WORK/base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# --- setup -------------------------------------------------------------------

APT_UPDATED=
apt_install() {
	if [ -z "$APT_UPDATED" ]; then
		as_root apt-get update -qq
		APT_UPDATED=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

setup() {
	command -v go >/dev/null || { log "go is required"; exit 1; }
	if [[ " $SERVERS " == *" redis-"* ]] && ! command -v redis-server >/dev/null; then
		log "installing redis-server"
		apt_install redis-server
	fi
	if [[ " $SERVERS " == *" workerd "* ]]; then
		if ! command -v npm >/dev/null; then
			log "installing nodejs and npm"
			apt_install nodejs npm
		fi
		if [ ! -x "$ROOT/bench/workerd/node_modules/.bin/workerd" ]; then
			log "npm ci in bench/workerd"
			(cd "$ROOT/bench/workerd" && npm ci --no-audit --no-fund >&2)
		fi
	fi
	log "building loadgen, redispeer, benchreport"
	(cd "$ROOT" && go build -o "$WORK/bin/" ./bench/cmd/loadgen ./bench/cmd/redispeer ./bench/cmd/benchreport)
	DURABLE_MISSING=
	if [[ " $SERVERS " == *" durable "* ]]; then
		# Built once instead of `go run` per run; "serve --help" succeeds
		# only once the serve command exists.
		if [ -d "$ROOT/cmd/durable" ] && (cd "$ROOT" && go build -o "$WORK/bin/durable" ./cmd/durable) 2>"$WORK/durable-build.log" &&
			"$WORK/bin/durable" serve --help >/dev/null 2>&1; then
			log "built durable"
		else
			DURABLE_MISSING="not built yet"
			echo "durable: not built yet"
		fi
	fi
	BASE_MISSING=
	BASE_COMMIT=
	BASE_REPORTED=
	if [[ " $SERVERS " == *" durable-base "* ]]; then
		build_base
	fi
}

# build_base: ./cmd/durable at BENCH_BASELINE into $WORK/bin/durable-base, from
# a git archive export (no worktree, so nothing is left in the repository even
# if the script is killed); sets BASE_COMMIT, or BASE_MISSING on failure.
build_base() {
	if [ -z "$BASE_REF" ]; then
		BASE_MISSING="BENCH_BASELINE not set"
		log "durable-base: BENCH_BASELINE not set"
		return
	fi
	local commit
	if ! commit=$(git -C "$ROOT" rev-parse --verify --quiet "$BASE_REF^{commit}"); then
		BASE_MISSING="no commit ${BASE_REF//[\"\\]/}"
		log "durable-base: $BASE_REF is not a commit"
		return
	fi
	BASE_COMMIT=$(git -C "$ROOT" rev-parse --short "$commit")
	log "building durable-base from $BASE_REF ($BASE_COMMIT)"
	rm -rf "$WORK/base"
	mkdir -p "$WORK/base"
	if git -C "$ROOT" archive "$commit" | tar -x -C "$WORK/base" &&
		[ -d "$WORK/base/cmd/durable" ] &&
		(cd "$WORK/base" && go build -o "$WORK/bin/durable-base" ./cmd/durable) >"$WORK/durable-base-build.log" 2>&1 &&
		"$WORK/bin/durable-base" serve --help >/dev/null 2>&1; then
		log "built durable-base ($BASE_COMMIT)"
	else
		BASE_MISSING="$BASE_COMMIT not built"
		log "durable-base: $BASE_REF ($BASE_COMMIT) did not build"
		tail -n 5 "$WORK/durable-base-build.log" >&2 2>/dev/null || true
	fi
	rm -rf "$WORK/base"
}

# --- servers -----------------------------------------------------------------

# Ports below the kernel's ephemeral range, so no client socket holds one.
read -r EPHEMERAL_LO _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LO=32768
PORT_LO=$((EPHEMERAL_LO > 12000 ? EPHEMERAL_LO - 10000 : 2000))
NEXT_PORT=$((PORT_LO + RANDOM % 5000))
free_port() {
	while (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; do
		NEXT_PORT=$((NEXT_PORT + 1))
	done
	PORT=$NEXT_PORT
	NEXT_PORT=$((NEXT_PORT + 1))
}

# healthy PORT: does GET /healthz answer 200?
healthy() {
	local status
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	IFS= read -r -t 2 status <&3 || status=
	exec 3<&- 3>&-
	[[ "$status" == *" 200 "* ]]
}

# wait_for PID PORT WHAT: until PORT answers /healthz, or fail if PID dies.
wait_for() {
	local i
	for ((i = 0; i < 300; i++)); do
		if healthy "$2" 2>/dev/null; then return 0; fi
		if ! kill -0 "$1" 2>/dev/null; then log "$3 exited before answering"; return 1; fi
		sleep 0.1
	done
	log "$3 did not answer /healthz on port $2 within 30s"
	return 1
}

# start_redis FSYNC: redis-server with AOF on a free port, data in a temp dir.
start_redis() {
	free_port
	local rport=$PORT dir="$WORK/run/redis"
	mkdir -p "$dir"
	redis-server --bind 127.0.0.1 --port "$rport" --dir "$dir" --save "" \
		--appendonly yes --appendfsync "$1" --daemonize no --logfile "$dir/redis.log" &
	PIDS+=($!)
	local i
	for ((i = 0; i < 100; i++)); do
		redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
		sleep 0.1
	done
	free_port
	"$WORK/bin/redispeer" --addr "127.0.0.1:$PORT" --redis "127.0.0.1:$rport" >"$WORK/run/redispeer.log" 2>&1 &
	PIDS+=($!)
	wait_for $! "$PORT" redispeer
}

# start SERVER: sets URL, or returns 1 after showing the server's log.
start() {
	if start_once "$1"; then return 0; fi
	tail -n 5 "$WORK"/run/*.log >&2 2>/dev/null || true
	return 1
}

# RUNS numbers the runs; each keeps its data in $WORK/done until exit.
RUNS=0

start_once() {
	# The last run's files are moved aside, not deleted: on ext4 without a
	# journal (this machine's /) the inode allocator skips inodes deleted in
	# the last 60-300 s one by one, so deleting a run's tens of thousands of
	# files made file creation in the next run several times slower, for
	# whichever server came next.
	if [ -d "$WORK/run" ]; then
		RUNS=$((RUNS + 1))
		mv "$WORK/run" "$WORK/done/$RUNS"
	fi
	mkdir -p "$WORK/run"
	case $1 in
	durable | durable-base)
		free_port
		mkdir -p "$WORK/run/data"
		# shellcheck disable=SC2086 # DURABLE_FLAGS is a list of flags
		"$WORK/bin/$1" serve --addr "127.0.0.1:$PORT" --data "$WORK/run/data" $DURABLE_FLAGS >"$WORK/run/$1.log" 2>&1 &
		PIDS+=($!)
		wait_for $! "$PORT" "$1" || return 1
		;;
	redis-always) start_redis always || return 1 ;;
	redis-everysec) start_redis everysec || return 1 ;;
	workerd)
		free_port
		mkdir -p "$WORK/run/do"
		(cd "$ROOT/bench/workerd" && exec node_modules/.bin/workerd serve config.capnp \
			--socket-addr "http=127.0.0.1:$PORT" --directory-path "storage=$WORK/run/do") >"$WORK/run/workerd.log" 2>&1 &
		PIDS+=($!)
		wait_for $! "$PORT" workerd || return 1
		;;
	*) log "unknown server $1"; return 1 ;;
	esac
	URL="http://127.0.0.1:$PORT"
}

stop_all() {
	local pid
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]:-}"; do
		[ -n "$pid" ] && wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

# --- runs --------------------------------------------------------------------

to_seconds() { # 10s, 1500ms, 2m → whole seconds, rounded up
	case $1 in
	*ms) echo $(((${1%ms} + 999) / 1000)) ;;
	*s) echo "${1%s}" | cut -d. -f1 ;;
	*m) echo $((${1%m} * 60)) ;;
	*) echo "$1" ;;
	esac
}

run_one() { # SCENARIO SERVER REP
	local scenario=$1 server=$2 rep=$3 file="$OUT/$1.$2.$3.json"
	URL=
	if [ "$scenario" = docs-fanout ] && [ "$server" != durable ] && [ "$server" != durable-base ]; then
		return # durable only: the peers do not implement /v1/docs (no line: "-" in the table)
	fi
	if [ "$server" = durable ] && [ -n "$DURABLE_MISSING" ]; then return; fi
	if [ "$server" = durable-base ] && [ -n "$BASE_MISSING" ]; then
		# Reported here, not after setup, so the table keeps the order of BENCH_SERVERS.
		if [ -z "$BASE_REPORTED" ]; then
			printf '{"server":"durable-base","missing":"%s"}\n' "$BASE_MISSING" >>"$RESULTS"
			BASE_REPORTED=1
		fi
		return
	fi
	if ! start "$server"; then
		stop_all
		log "$server failed to start; trying once more"
		start "$server" || true
	fi
	if [ -z "${URL:-}" ]; then
		log "$server failed to start; skipping $scenario"
		stop_all
		if [ "$server" = durable ]; then
			DURABLE_MISSING="failed to start"
			printf '{"server":"durable","missing":"%s"}\n' "$DURABLE_MISSING" >>"$RESULTS"
		elif [ "$server" = durable-base ]; then
			BASE_MISSING="$BASE_COMMIT failed to start"
			BASE_REPORTED=1
			printf '{"server":"durable-base","missing":"%s"}\n' "$BASE_MISSING" >>"$RESULTS"
		fi
		return
	fi
	local load
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	log "$scenario on $server (rep $rep, $CONNS conns, $DURATION; load average $load)"
	echo "$scenario $server $rep start $load" >>"$LOADLOG"
	local limit=$(($(to_seconds "$DURATION") + $(to_seconds "$WARMUP") + 120))
	if timeout "$limit" "$WORK/bin/loadgen" --url "$URL" --scenario "$scenario" --conns "$CONNS" \
		--duration "$DURATION" --warmup "$WARMUP" --json >"$file"; then
		printf '{"server":"%s","rep":%d,"result":%s}\n' "$server" "$rep" "$(cat "$file")" >>"$RESULTS"
		if [ "$server" = durable ] || [ "$server" = durable-base ]; then
			# Commits, sync rounds and their latency, for reading the figures.
			curl -s --max-time 5 "$URL/metrics" 2>/dev/null | grep '^durable_' >"$OUT/$scenario.$server.$rep.metrics" || true
		fi
	else
		log "loadgen failed for $scenario on $server"
		printf '{"server":"%s","rep":%d,"scenario":"%s","error":"loadgen failed"}\n' "$server" "$rep" "$scenario" >>"$RESULTS"
	fi
	echo "$scenario $server $rep end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$LOADLOG"
	stop_all
}

raise_nofile() {
	[ "$NOFILE" -gt 0 ] 2>/dev/null || return 0
	if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$NOFILE" ]; then
		ulimit -n "$NOFILE" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
	fi
}

raise_nofile
setup
if [ -n "${DURABLE_MISSING:-}" ]; then
	printf '{"server":"durable","missing":"%s"}\n' "$DURABLE_MISSING" >>"$RESULTS"
fi
read -r -a order <<<"$SERVERS"
for ((rep = 0; rep < REPS; rep++)); do
	for scenario in $SCENARIOS; do
		if ((rep % 2 == 0)); then
			for server in "${order[@]}"; do run_one "$scenario" "$server" "$rep"; done
		else
			for ((i = ${#order[@]} - 1; i >= 0; i--)); do run_one "$scenario" "${order[i]}" "$rep"; done
		fi
	done
done

echo
echo "loopback, $(nproc) cores, $CONNS conns, $DURATION per run (+$WARMUP warmup), $REPS rep(s); load generator shares the machine"
if [ -n "${BASE_COMMIT:-}" ]; then
	head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
	git -C "$ROOT" diff --quiet HEAD -- . ':(exclude)bench' 2>/dev/null || head="$head + uncommitted changes"
	echo "durable-base: BENCH_BASELINE=$BASE_REF = $BASE_COMMIT; durable: working tree ($head)"
fi
echo "open-file limit $(ulimit -n); 1-minute load average at the start of each run: $(awk '$4 == "start" {print $5}' "$LOADLOG" | sort -n | sed -n '1p;$p' | paste -sd- -)"
"$WORK/bin/benchreport" "$RESULTS"
echo "raw results: $OUT"
