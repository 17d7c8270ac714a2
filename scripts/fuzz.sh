#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (build dir build-fuzz: the library with
# coverage, AddressSanitizer and UndefinedBehaviorSanitizer) and runs each for FUZZ_SECONDS
# (default 60) over a scratch copy of its seed corpus, NORMNET_JOBS targets at a time. Exits
# non-zero when any target found an input that crashes it or trips a sanitizer; that input is
# kept in $FUZZ_ARTIFACTS (default build-fuzz/artifacts), the run's log in build-fuzz/fuzz_<target>.log.
# With NORMNET_FUZZ_TESTS=1 (what scripts/test.sh does) the same build also compiles the tests,
# examples and tool, and the whole CTest suite (but the CMake consumer tests) runs under the
# sanitizers before the fuzzing: one sanitized library build serves both.
#
#   bash scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh idx  # one target, an hour
#   NORMNET_FUZZ_TESTS=1 bash scripts/fuzz.sh   # the suite under sanitizers, then 60 s per target (CI)
# Environment: NORMNET_JOBS (default: every core), NORMNET_CCACHE=0 to build without ccache,
# FUZZ_SECONDS=0 to build (and test) without fuzzing, NORMNET_TEST_TIMEOUT (seconds per test).
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

# clang's OpenMP runtime (libomp) registers every process in /dev/shm/__KMP_REGISTERED_LIB_<pid>_<uid>,
# and some processes of a sanitized run leave theirs behind (about 60 per run). A later process that
# gets the same pid (pid_max can be as low as 32768) reads the stale file at start-up, and an empty
# one kills it with SIGBUS inside libomp (seen once, after a dozen runs on one machine). Registrations
# of processes that no longer exist are removed before each pass; live ones are left alone.
clear_stale_libomp_registrations() {
  local f pid
  for f in /dev/shm/__KMP_REGISTERED_LIB_*; do
    [[ -e "$f" ]] || continue
    pid="${f#/dev/shm/__KMP_REGISTERED_LIB_}"
    pid="${pid%%_*}"
    [[ "$pid" =~ ^[0-9]+$ && ! -d "/proc/$pid" ]] && rm -f "$f" 2>/dev/null
  done
  return 0
}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for source in fuzz/fuzz_*.cpp; do
    stem="$(basename "$source" .cpp)"
    targets+=("${stem#fuzz_}")
  done
fi

with_tests=OFF
if [[ "${NORMNET_FUZZ_TESTS:-0}" == 1 ]]; then with_tests=ON; fi
step "configure $build_dir (clang, libFuzzer coverage + ASan + UBSan; tests $with_tests)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_COMPILER=clang++ -DNORMNET_FUZZ=ON -DNORMNET_SANITIZE=ON -DNORMNET_BUILD_BENCHMARKS=OFF \
  -DNORMNET_BUILD_TESTS=$with_tests -DNORMNET_BUILD_EXAMPLES=$with_tests -DNORMNET_BUILD_TOOLS=$with_tests \
  "${launcher[@]}"
if [[ $with_tests == ON ]]; then
  step "build everything in $build_dir ($jobs jobs)"
  cmake --build "$build_dir" --parallel "$jobs"
  step "test under sanitizers ($jobs at a time)"
  clear_stale_libomp_registrations
  # Any sanitizer report fails the test: UBSan aborts (-fno-sanitize-recover), ASan always does.
  # The consumer tests (label "consumer": CMake packaging, run by the Release pass) are left out:
  # under sanitizer flags they would compile the whole library once more. The clang build runs
  # two OpenMP runtimes (clang's libomp for normnet, libgomp inside oneDNN); passive waiting
  # keeps their idle threads from spinning against each other on a small machine.
  OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --test-dir "$build_dir" --output-on-failure --no-tests=error --parallel "$jobs" \
    --timeout "${NORMNET_TEST_TIMEOUT:-600}" --label-exclude consumer
else
  step "build ${targets[*]} ($jobs jobs)"
  cmake --build "$build_dir" --parallel "$jobs" --target "${targets[@]/#/fuzz_}"
fi
if [[ "$seconds" == 0 ]]; then
  step "done (FUZZ_SECONDS=0: no fuzzing)"
  exit 0
fi

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
clear_stale_libomp_registrations
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
