#!/usr/bin/env bash
# How each operation uses the endpoint's lock, one scenario at a time:
# starts `bench-ours-lock-profile` on a free port (multi-threaded runtime,
# THREADS worker threads), drives it with `loadgen`, stops it with SIGTERM
# and prints the profile it writes (docs/performance.md, "Many cores").
#
#   cargo build --release -p bench-servers -p bench-loadgen --features bench-servers/lock-profile
#   bench/lock-profile.sh [echo|broadcast|poll|connect|all]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
threads=${THREADS:-2}
out=target/bench/lock-profile
mkdir -p "$out"

run() {
    local name=$1
    shift
    local log="$out/$name.server.txt"
    "$bin/bench-ours-lock-profile" --port 0 --threads "$threads" >"$log" 2>&1 &
    local pid=$!
    trap 'kill -TERM $pid 2>/dev/null || true' EXIT
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' "$log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "the server did not start" >&2; exit 1; }
    "$bin/loadgen" --addr "$addr" "$@" >"$out/$name.loadgen.txt" 2>&1 || true
    kill -TERM "$pid"
    wait "$pid" || true
    trap - EXIT
    echo "## $name: loadgen $*"
    grep -E '^\|' "$log"
    echo
}

what=${1:-all}
case $what in echo | all) run echo --scenario echo --clients 1000 --rate 10000 --warmup 1 --duration 10 ;; esac
case $what in broadcast | all) run broadcast --scenario broadcast --clients 1000 --rate 10 --warmup 1 --duration 10 ;; esac
case $what in broadcast10k | all) run broadcast10k --scenario broadcast --clients 10000 --rate 4 --warmup 1 --duration 10 --sources 4 --source-base 2 ;; esac
case $what in poll | all) run poll --scenario poll --clients 200 --warmup 1 --duration 10 --sources 4 --source-base 2 ;; esac
case $what in connect | all) run connect --scenario idle --clients 5000 --sources 4 --source-base 2 --concurrency 256 ;; esac
