#!/usr/bin/env bash
# Benchmark: hangscope beside lsof, ls -l and ss on one huge target (about 19,000 fds: 9,000
# files and 5,000 loopback TCP connections with both ends), in one run; then hangscope alone on
# a 1,000-thread target. Prints medians of RUNS runs (default 10), each command's ratio to
# hangscope, and peak memory. `--window 0`: one look, no sampling window.
#   bench/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin=target/release/hangscope
dir=$(mktemp -d /tmp/hangscope-bench.XXXXXX)
fifo=$dir/ready
mkfifo "$fifo"
"$bin" __scenario many-fds --dir "$dir" --files 9000 --conns 5000 --max-seconds 600 >"$fifo" &
target=$!
cleanup() { kill "$target" 2>/dev/null || true; wait "$target" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
read -r ready <"$fifo"
echo "target pid $target: $ready, $(ls /proc/$target/fd | wc -l) fds; kernel $(uname -r), $(nproc) cpus"
python3 bench/compare.py "$runs" \
  "hangscope --json=$bin $target --json --window 0" \
  "hangscope --json --stacks off=$bin $target --json --window 0 --stacks off" \
  "lsof -n -P -p=lsof -n -P -p $target" \
  "ls -l /proc/PID/fd=ls -l /proc/$target/fd" \
  "ss -tin=ss -tin"

"$bin" __scenario many-threads --count 1000 --max-seconds 600 >"$dir/threads.out" &
threads=$!
trap 'kill "$target" "$threads" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  [ "$(ls /proc/$threads/task 2>/dev/null | wc -l)" -ge 1000 ] && break
  sleep 0.1
done
echo
echo "target pid $threads: $(ls /proc/$threads/task | wc -l) threads"
python3 bench/compare.py "$runs" \
  "hangscope --window 0=$bin $threads --json --window 0" \
  "hangscope --window 0 --stacks off=$bin $threads --json --window 0 --stacks off" \
  "cat task/*/{stat,syscall,wchan,stack}=sh -c \"cat /proc/$threads/task/*/stat /proc/$threads/task/*/syscall /proc/$threads/task/*/wchan /proc/$threads/task/*/stack\""
