#!/usr/bin/env bash
# Installs the dependencies, configures (Release, Ninja, build dir `build`), builds everything with
# every core and runs the whole CTest suite. Exits non-zero on any failure.
#
#   bash scripts/test.sh                          # what CI runs (.ci/run)
#   bash scripts/test.sh -DNORMNET_SANITIZE=ON    # extra arguments go to cmake's configure step
# Environment: NORMNET_BUILD_DIR (default build), NORMNET_JOBS (default: every core),
# NORMNET_TEST_TIMEOUT (seconds per test without its own TIMEOUT, default 600),
# NORMNET_CCACHE=0 to build without ccache.
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
step "done"
