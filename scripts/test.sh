#!/usr/bin/env bash
# Installs the dependencies, configures (Release, Ninja, build dir `build`), builds everything with
# every core and runs the whole CTest suite; then builds it again with clang, AddressSanitizer,
# UndefinedBehaviorSanitizer and libFuzzer coverage (scripts/fuzz.sh, build dir `build-fuzz`),
# runs the suite there (all but the CMake consumer tests) and each libFuzzer target for 60 s.
# Exits non-zero on any failure.
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

# One clang build with AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer coverage serves
# the second pass (the suite under sanitizers) and the third (each fuzz target for 60 s).
sanitize_pass="${NORMNET_SANITIZE_PASS:-1}" fuzz_pass="${NORMNET_FUZZ_PASS:-1}"
if [[ "$sanitize_pass" != 0 || "$fuzz_pass" != 0 ]]; then
  step "sanitizers and fuzzing (scripts/fuzz.sh, build-fuzz)"
  fuzz_env=(NORMNET_FUZZ_TESTS="$([[ "$sanitize_pass" != 0 ]] && echo 1 || echo 0)")
  if [[ "$fuzz_pass" == 0 ]]; then fuzz_env+=(FUZZ_SECONDS=0); fi
  env "${fuzz_env[@]}" bash scripts/fuzz.sh
fi
step "done"
