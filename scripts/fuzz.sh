#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (build dir build-fuzz: the library with
# coverage, AddressSanitizer and UndefinedBehaviorSanitizer) and runs each for FUZZ_SECONDS
# (default 60) over a scratch copy of its seed corpus, NORMNET_JOBS targets at a time. Exits
# non-zero when any target found an input that crashes it or trips a sanitizer; that input is
# kept in $FUZZ_ARTIFACTS (default build-fuzz/artifacts), the run's log in build-fuzz/fuzz_<target>.log.
#
#   bash scripts/fuzz.sh                      # every target, 60 s each (what CI runs)
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh idx  # one target, an hour
# Environment: NORMNET_JOBS (default: every core), NORMNET_CCACHE=0 to build without ccache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${NORMNET_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${NORMNET_JOBS:-$(nproc)}"
seconds="${FUZZ_SECONDS:-60}"
artifacts="${FUZZ_ARTIFACTS:-$build_dir/artifacts}"
launcher=()
if [[ "${NORMNET_CCACHE:-1}" != 0 ]] && command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
step() { echo "== $* ($(date +%T))"; }

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for source in fuzz/fuzz_*.cpp; do
    stem="$(basename "$source" .cpp)"
    targets+=("${stem#fuzz_}")
  done
fi

step "configure $build_dir (clang, libFuzzer + ASan + UBSan)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_COMPILER=clang++ \
  -DNORMNET_FUZZ=ON -DNORMNET_BUILD_TESTS=OFF -DNORMNET_BUILD_BENCHMARKS=OFF -DNORMNET_BUILD_EXAMPLES=OFF \
  -DNORMNET_BUILD_TOOLS=OFF "${launcher[@]}"
step "build ${targets[*]} ($jobs jobs)"
cmake --build "$build_dir" --parallel "$jobs" --target "${targets[@]/#/fuzz_}"

rm -rf "$artifacts"  # findings of an earlier run
mkdir -p "$artifacts"
# Runs one target over a scratch copy of its seed corpus; prints libFuzzer's final statistics.
fuzz_one() {
  local target="$1" corpus="$build_dir/corpus/$1"
  mkdir -p "$corpus"
  cp -n fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  # Bounded memory, input size and time per input; -print_final_stats prints the executions.
  "$build_dir/fuzz/fuzz_$target" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
    -timeout=10 -artifact_prefix="$artifacts/$target-" -print_final_stats=1 >"$build_dir/fuzz_$target.log" 2>&1 || true
  echo "fuzz_$target: $(grep -E '^stat::number_of_executed_units' "$build_dir/fuzz_$target.log" | awk '{print $2}') executions in ${seconds}s"
}

# $jobs targets at a time (each libFuzzer run is one process on one core).
step "fuzz ${targets[*]} for ${seconds}s each, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  fuzz_one "$target" &
  running=$((running + 1))
  if [[ $running -ge $jobs ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
findings=$(find "$artifacts" -type f | sort)
if [[ -n "$findings" ]]; then
  for finding in $findings; do
    target="$(basename "$finding")"
    target="${target%%-*}"
    echo "fuzz.sh: fuzz_$target failed on $finding; its log:" >&2
    grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x" "$build_dir/fuzz_$target.log" | head -40 >&2
  done
  exit 1
fi
step "done"
