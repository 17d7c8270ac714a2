#!/usr/bin/env bash
# Installs the dependencies, configures and builds the normnet tool (in the build dir that
# scripts/test.sh uses), then runs the main job. Until training lands, the main job is the L2
# normalization demo: every epsilon mode side by side on vectors from 1e-40 to 1e37 in scale.
#
#   bash scripts/run.sh                                   # normnet normalize --all-modes
#   bash scripts/run.sh normalize --values 1e-20,2e-20    # any other normnet command line
# Environment: NORMNET_BUILD_DIR, NORMNET_JOBS, NORMNET_CCACHE, as for scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${NORMNET_BUILD_DIR:-build}"
jobs="${NORMNET_JOBS:-$(nproc)}"
launcher=()
if [[ "${NORMNET_CCACHE:-1}" != 0 ]] && command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
step() { echo "== $* ($(date +%T))" >&2; }

step "setup"
bash scripts/setup.sh >&2
step "configure $build_dir"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >&2
step "build the normnet tool ($jobs jobs)"
cmake --build "$build_dir" --parallel "$jobs" --target normnet_cli >&2
if [[ $# -eq 0 ]]; then
  set -- normalize --all-modes
fi
step "normnet $*"
exec "$build_dir/tools/normnet" "$@"
