#!/usr/bin/env bash
# Benchmark: hangscope beside lsof, ls -l and ss on two huge targets (19,006 fds each: 9,000
# regular files, or 9,000 opens of /dev/null, and 5,000 loopback TCP connections with both
# ends), each alone, the commands alternated; `watch --every 1s` on the first for a minute;
# then hangscope alone on a 1,000-thread target. Prints medians of RUNS runs (default 10), each
# command's ratio to hangscope, and peak memory. `--window 0`: one look, no sampling window.
#   bench/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin=target/release/hangscope
dir=$(mktemp -d /tmp/hangscope-bench.XXXXXX)
cleanup() {
  kill ${target:-} ${threads:-} 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
echo "kernel $(uname -r), $(nproc) cpus"
tw() { ss -Htan state time-wait | wc -l; }
# Two huge targets, the same but for what their 9,000 files are: regular files, or /dev/null
# opened 9,000 times (a character device). One at a time: the other's 10,000 sockets would be
# in the namespace every socket dump (hangscope's, ss's, lsof's /proc/net read) goes through,
# and so would the 5,000 TIME-WAIT sockets its exit leaves for 60 s: the next one waits them out.
tw_before=$(tw)
for files in regular devnull; do
  flag=$([ "$files" = devnull ] && echo --devnull || true)
  mkfifo "$dir/ready-$files"
  "$bin" __scenario many-fds --dir "$dir" $flag --files 9000 --conns 5000 --max-seconds 900 \
    >"$dir/ready-$files" &
  target=$!
  read -r ready <"$dir/ready-$files"
  echo
  echo "target pid $target ($files): $ready, $(ls /proc/$target/fd | wc -l) fds;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 bench/compare.py "$runs" \
    "hangscope --json=$bin $target --json --window 0" \
    "hangscope --json --stacks off=$bin $target --json --window 0 --stacks off" \
    "lsof -n -P -p=lsof -n -P -p $target" \
    "ls -l /proc/PID/fd=ls -l /proc/$target/fd" \
    "ss -tin=ss -tin"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$files" = regular ]; then
    # `watch --every 1s` on it for WATCH_SECONDS (default 60): its CPU (user and system, from
    # GNU time) as a share of one core over the wall time, and its peak memory.
    watch_s=${WATCH_SECONDS:-60}
    /usr/bin/time -f "%e %U %S %M" -o "$dir/watch.time" \
      "$bin" watch "$target" --every 1s --duration "${watch_s}s" --save-dir "$dir" >/dev/null
    read -r wall user sys kb <"$dir/watch.time"
    awk -v w="$wall" -v u="$user" -v s="$sys" -v kb="$kb" -v pid="$target" 'BEGIN {
      printf "watch %s --every 1s for %.1f s: cpu %.0f ms = %.2f%% of one core, peak %.1f MB\n",
        pid, w, (u + s) * 1000, 100 * (u + s) / w, kb / 1024 }'
    kill "$target"
    wait "$target" 2>/dev/null || true
    rm -f "$dir"/f*
    for _ in $(seq 75); do
      [ "$(tw)" -le $((tw_before + 100)) ] && break
      sleep 1
    done
  fi
done
kill "$target"
wait "$target" 2>/dev/null || true

"$bin" __scenario many-threads --count 1000 --max-seconds 600 >"$dir/threads.out" &
threads=$!
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
