#!/usr/bin/env bash
# Installs the dependencies, configures (Release, Ninja, build dir `build`), builds everything with
# every core and runs the whole CTest suite; then builds it again with AddressSanitizer and
# UndefinedBehaviorSanitizer (build dir `build-asan`) and runs the suite there (all but the CMake
# consumer tests); then runs each libFuzzer target for 60 s (scripts/fuzz.sh, build dir
# `build-fuzz`). Exits non-zero on any failure.
#
#   bash scripts/test.sh                          # what CI runs (.ci/run)
#   bash scripts/test.sh -DNORMNET_SANITIZE=ON    # extra arguments go to cmake's configure step
# Environment: NORMNET_BUILD_DIR (default build), NORMNET_JOBS (default: every core),
# NORMNET_TEST_TIMEOUT (seconds per test without its own TIMEOUT, default 600),
# NORMNET_CCACHE=0 to build without ccache, NORMNET_SANITIZE_PASS=0 to skip the sanitizer pass,
# NORMNET_FUZZ_PASS=0 to skip fuzzing (FUZZ_SECONDS sets its length per target).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${NORMNET_BUILD_DIR:-build}"
jobs="${NORMNET_JOBS:-$(nproc)}"
launcher=()
if [[ "${NORMNET_CCACHE:-1}" != 0 ]] && command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
step() { echo "== $* ($(date +%T))"; }

step "setup"
bash scripts/setup.sh
step "configure $build_dir"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
step "build ($jobs jobs)"
cmake --build "$build_dir" --parallel "$jobs"
step "test ($jobs at a time)"
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error --parallel "$jobs" \
  --timeout "${NORMNET_TEST_TIMEOUT:-600}"

if [[ "${NORMNET_SANITIZE_PASS:-1}" != 0 ]]; then
  asan_dir="${build_dir}-asan"
  step "configure $asan_dir (AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake -S . -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DNORMNET_SANITIZE=ON \
    -DNORMNET_BUILD_BENCHMARKS=OFF "${launcher[@]}" "$@"
  step "build $asan_dir ($jobs jobs)"
  cmake --build "$asan_dir" --parallel "$jobs"
  step "test under sanitizers ($jobs at a time)"
  # Any sanitizer report fails the test: UBSan aborts (-fno-sanitize-recover), ASan always does.
  # The consumer tests (label "consumer": CMake packaging, run in the first pass) are left out
  # here: under sanitizer flags they would compile the whole library a third time.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    ctest --test-dir "$asan_dir" --output-on-failure --no-tests=error --parallel "$jobs" \
    --timeout "${NORMNET_TEST_TIMEOUT:-600}" --label-exclude consumer
fi

if [[ "${NORMNET_FUZZ_PASS:-1}" != 0 ]]; then
  step "fuzz"
  bash scripts/fuzz.sh
fi
step "done"
