#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (libFuzzer's -max_total_time); fails when
# any target crashes, panics, times out on an input or runs out of memory, and prints a summary.
#
#   fuzz/run.sh SECONDS [TARGET...]      (all targets when none is named)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Works with a stable toolchain:
# RUSTC_BOOTSTRAP lets it accept the -Zsanitizer flag cargo-fuzz passes. FUZZ_JOBS targets run
# at a time (default: the number of CPUs). New inputs go to fuzz/target/corpus/TARGET, seeded
# from the committed fuzz/corpus/TARGET, which stays as it is; a crashing input is written to
# fuzz/artifacts/TARGET/ and its panic is printed.
set -euo pipefail
cd "$(dirname "$0")"

if (($# < 1)) || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
export RUSTC_BOOTSTRAP=1
# Release code with debug assertions and overflow checks (cargo-fuzz's default), AddressSanitizer.
build_flags=(--sanitizer address --debug-assertions)

started=$(date +%s)
if (($#)); then
  targets=("$@")
  for t in "${targets[@]}"; do
    cargo fuzz build "${build_flags[@]}" "$t"
  done
else
  mapfile -t targets < <(cargo fuzz list)
  cargo fuzz build "${build_flags[@]}"
fi
built=$(date +%s)
jobs=${FUZZ_JOBS:-$(nproc)}
echo "fuzz/run.sh: built ${#targets[@]} targets in $((built - started)) s" >&2

logs=target/fuzz-logs
mkdir -p "$logs"

run_one() {
  local t=$1
  local work=target/corpus/$t
  mkdir -p "$work" "artifacts/$t"
  # -timeout: an input that takes 10 s is a hang, a failure like a crash.
  # Inputs that once crashed are seeds too (each is also a unit test, see the README).
  local kept=()
  if [[ -d ../tests/fixtures/fuzz-regressions/$t ]]; then
    kept=("../tests/fixtures/fuzz-regressions/$t")
  fi
  local dict=()
  if [[ -f $t.dict ]]; then
    dict=("-dict=$t.dict")
  fi
  cargo fuzz run "${build_flags[@]}" "$t" "$work" "corpus/$t" "${kept[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" >"$logs/$t.log" 2>&1
}

declare -A status
pids=()
names=()
for t in "${targets[@]}"; do
  if [[ ! -d corpus/$t ]]; then
    echo "fuzz/run.sh: no seed corpus fuzz/corpus/$t" >&2
    exit 2
  fi
  while (($(jobs -rp | wc -l) >= jobs)); do
    wait -n || true
  done
  run_one "$t" &
  pids+=($!)
  names+=("$t")
done
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    status[${names[$i]}]=ok
  else
    status[${names[$i]}]=FAILED
  fi
done
finished=$(date +%s)

failed=0
printf '\n%-10s %8s %12s %10s %8s  %s\n' target seconds execs execs/s cov result
for t in "${targets[@]}"; do
  log=$logs/$t.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  printf '%-10s %8s %12s %10s %8s  %s\n' "$t" "$seconds" "${execs:--}" "${rate:--}" \
    "${cov:--}" "${status[$t]}"
  if [[ ${status[$t]} != ok ]]; then
    failed=1
  fi
done
echo "fuzz/run.sh: build $((built - started)) s, fuzzing $((finished - built)) s, $jobs at a time"

if ((failed)); then
  for t in "${targets[@]}"; do
    [[ ${status[$t]} == ok ]] && continue
    echo
    echo "=== $t: fuzz/target/fuzz-logs/$t.log ==="
    # The panic or sanitizer report, and where libFuzzer wrote the input.
    grep -E -A12 "panicked at|ERROR: (AddressSanitizer|libFuzzer)|==[0-9]+== ERROR" \
      "$logs/$t.log" | head -40 || tail -30 "$logs/$t.log"
    grep -E "Test unit written to|artifact_prefix" "$logs/$t.log" || true
  done
  exit 1
fi
