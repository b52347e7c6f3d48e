#!/usr/bin/env bash
# Benchmark of a target's cost against its host's (issue #15), in one run:
#  1. a 6-fd client beside a neighbour with 19,006 fds and 10,000 sockets, `--window 0`: its
#     sockets by exact lookups, and with the namespace dump forced (HANGSCOPE_NO_PIDFD_GETFD=1,
#     as on a kernel before 5.6); beside `ls -l /proc/PID/fd` and `lsof -n -P -p`;
#  2. the neighbour itself, with regular files and with /dev/null (as JSON, and as the default
#     text), beside the same two;
#  3. `watch --every 1s` on the 19,006-fd target for a minute: its CPU share.
# (`scan` on a host of 1,000 processes: bench/scan.sh.)
# Prints medians of RUNS runs (default 10), ratios to the first command, and peak memory.
#   bench/host.sh [RUNS] [WATCH_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
watch_for=${2:-60}
cargo build --release --quiet
bin=$PWD/target/release/hangscope
dir=$(mktemp -d /tmp/hangscope-host-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# start NAME ARGS...: a scenario in the background; $started is its pid, $out its stdout file.
start() {
  out=$dir/$1.$RANDOM.out
  "$bin" __scenario "$@" --max-seconds 1800 >"$out" &
  started=$!
  pids+=("$started")
}
# first_line KEY: waits (at most 60 s) for the scenario's announcement of KEY in $out.
first_line() {
  for _ in $(seq 600); do
    grep -m1 "^$1" "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no $1 in $out" >&2
  return 1
}

mkdir "$dir/files"
start many-fds --dir "$dir/files" --files 9000 --conns 5000; big=$started; first_line ready >/dev/null
start deaf-server; first_line port >/dev/null; port=$(first_line port | cut -d' ' -f2)
start flood-client --peer "127.0.0.1:$port"; client=$started; first_line sender >/dev/null
sleep 2
echo "== 1. a $(ls /proc/$client/fd | wc -l)-fd client beside a $(ls /proc/$big/fd | wc -l)-fd process; kernel $(uname -r), $(nproc) cpus"
python3 bench/compare.py "$runs" \
  "hangscope --window 0=$bin $client --json --window 0 --no-chain" \
  "dump forced=env HANGSCOPE_NO_PIDFD_GETFD=1 $bin $client --json --window 0 --no-chain" \
  "stacks off=$bin $client --json --window 0 --no-chain --stacks off" \
  "with the chain=$bin $client --json --window 0" \
  "2 s window=$bin $client --json --window 2s --no-chain" \
  "ls -l /proc/PID/fd=ls -l /proc/$client/fd" \
  "lsof -n -P -p=lsof -n -P -p $client"

echo
echo "== 2. the $(ls /proc/$big/fd | wc -l)-fd process itself (regular files)"
python3 bench/compare.py "$runs" \
  "hangscope --window 0=$bin $big --json --window 0 --no-chain" \
  "text output=$bin $big --window 0 --no-chain" \
  "ls -l /proc/PID/fd=ls -l /proc/$big/fd" \
  "lsof -n -P -p=lsof -n -P -p $big"
mkdir "$dir/null"
start many-fds --dir "$dir/null" --files 9000 --conns 5000 --devnull; null=$started; first_line ready >/dev/null
echo "-- the same with /dev/null files"
python3 bench/compare.py "$runs" \
  "hangscope --window 0=$bin $null --json --window 0 --no-chain" \
  "text output=$bin $null --window 0 --no-chain" \
  "ls -l /proc/PID/fd=ls -l /proc/$null/fd" \
  "lsof -n -P -p=lsof -n -P -p $null"
kill "$null"

echo
echo "== 3. watch --every 1s on the $(ls /proc/$big/fd | wc -l)-fd process for ${watch_for} s"
if "$bin" watch --help >/dev/null 2>&1; then
  /usr/bin/time -f "%U %S %M" -o "$dir/watch.time" \
    "$bin" watch "$big" --every 1s --for 5s --duration "${watch_for}s" >/dev/null 2>&1 || true
  read -r u s m <"$dir/watch.time"
  python3 -c "import sys; u,s,m,t=map(float,sys.argv[1:]); print(f'watch: {1000*(u+s):.0f} ms CPU over {t:.0f} s = {100*(u+s)/t:.2f}% of one core; peak {m/1024:.1f} MB')" "$u" "$s" "$m" "$watch_for"
else
  echo "watch: not built"
fi
