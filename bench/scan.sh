#!/usr/bin/env bash
# Benchmark of `hangscope scan` (issue #15): a host of PROCS more processes of THREADS threads
# each (started here, each thread in a one-second sleep loop, as idle workers are), then, in
# one run and alternately: one look (`scan --window 0`), the default window (`scan`, 2 s),
# `ps -eLo stat,wchan` (every thread's state and wait channel, once) and, when installed, psn
# of 0x.tools (`psn -G syscall,wchan`, 20 Hz sampling for its default 5 s; on PATH or $PSN).
# Prints medians of RUNS runs of wall and CPU time (user + system of the finished child,
# wait4's rusage), peak memory, then the looks' own CPU (`look_cpu_ms`, without the suspects'
# full reads) and the cost per process.
#   bench/scan.sh [RUNS] [PROCS] [THREADS]        (defaults 10, 1000, 20)
#   HANGSCOPE=path/to/hangscope bench/scan.sh     (another build, e.g. to compare two commits)
#   HANGSCOPE_BASE=path/to/old/hangscope bench/scan.sh
#       the looks of this build too, alternating with HANGSCOPE's on the same staged host
#   LOOKS_ONLY=1 bench/scan.sh                    (only the looks' CPU, not the whole runs)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
procs=${2:-1000}
threads=${3:-20}
if [ -z "${HANGSCOPE:-}" ]; then
  cargo build --release --quiet
  bin=$PWD/target/release/hangscope
else
  bin=$HANGSCOPE
fi
pids=()
cleanup() {
  # Only the processes started here, by PID.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ls fails on a task that exits between the glob and its stat: with pipefail, not an error.
count_threads() { { ls -d /proc/[0-9]*/task/[0-9]* 2>/dev/null || true; } | wc -l; }
have=$(count_threads)
want=$((have + procs * threads))
room=$(($(cat /proc/sys/kernel/pid_max) - want))
if [ "$room" -lt 2000 ]; then
  echo "not enough PIDs: $have threads now, $want wanted, pid_max $(cat /proc/sys/kernel/pid_max)" >&2
  exit 1
fi

echo "== scan on a host with $procs more processes of $threads threads each"
for _ in $(seq "$procs"); do
  "$bin" __scenario many-threads --count $((threads - 1)) --sleep --max-seconds 1800 >/dev/null &
  pids+=("$!")
done
for _ in $(seq 600); do
  [ "$(count_threads)" -ge "$want" ] && break
  sleep 0.1
done
echo "host: $({ ls -d /proc/[0-9]* 2>/dev/null || true; } | wc -l) processes, $(count_threads) threads; kernel $(uname -r), $(nproc) cpus"

psn=${PSN:-$(command -v psn || true)}
cmds=(
  "scan --window 0=$bin scan --window 0 --json"
  "scan (2 s window)=$bin scan --json"
  "ps -eLo stat,wchan=ps -eLo stat,wchan"
)
if [ -n "$psn" ]; then
  cmds+=("psn -G syscall,wchan=python3 $psn -G syscall,wchan")
else
  echo "(psn not installed: not on PATH and \$PSN unset; it is in no Debian or PyPI package:"
  echo " bin/psn of github.com/tanelpoder/0xtools runs from a checkout, PSN=.../bin/psn)"
fi
if [ -z "${LOOKS_ONLY:-}" ]; then
  PER_PROCESS=$({ ls -d /proc/[0-9]* 2>/dev/null || true; } | wc -l) python3 bench/compare.py "$runs" "${cmds[@]}"
fi

# The looks' own CPU does not depend on the suspects' full reads: a short deadline (the looks
# get half of it) keeps the runs short.
bins=("$bin")
[ -n "${HANGSCOPE_BASE:-}" ] && bins=("$HANGSCOPE_BASE" "$bin")
echo "-- the looks alone (look_cpu_ms of the JSON, --deadline 8s), medians of $runs runs, alternating"
for w in 0 2s; do
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    for b in "${bins[@]}"; do
      j=$("$b" scan --window "$w" --deadline 8s --json) || true
      if [ -n "$j" ]; then printf '%s\t%s\n' "$b" "$j" >>"$out"; fi
    done
  done
  python3 -c '
import json, statistics, sys
by = {}
for line in open(sys.argv[2]):
    b, _, j = line.partition("\t")
    if j.strip():
        by.setdefault(b, []).append(json.loads(j))
for b, rs in by.items():
    cpus = sorted(r["look_cpu_ms"] for r in rs)
    cpu = statistics.median(cpus)
    n = max(statistics.median(r["processes"] for r in rs), 1)
    t = statistics.median(r["threads"] for r in rs)
    print("%s scan --window %-3s %5d processes %6d threads: looks %4d ms CPU (runs %s), %3.0f us per process"
          % (b, sys.argv[1], n, t, cpu, cpus, 1000.0 * cpu / n))' "$w" "$out"
  rm -f "$out"
done
