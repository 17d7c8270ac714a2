#!/usr/bin/env bash
# Installs the dependencies, configures and builds the normnet tool (in the build dir that
# scripts/test.sh uses), then runs the main job: `normnet train` with its defaults, which trains
# the Fashion-MNIST CNN (an L2-normalized, activity-regularized embedding) for 3 epochs, prints
# the test accuracy and saves the model, a checkpoint per epoch and the training curves in the
# build dir.
#
#   bash scripts/run.sh                                   # normnet train (defaults)
#   bash scripts/run.sh train --epochs 10                 # any other normnet command line
#   bash scripts/run.sh normalize --all-modes
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
  set -- train --output "$build_dir/fashion_cnn.safetensors" --plot "$build_dir/fashion_cnn_curves.svg"
fi
step "normnet $*"
exec "$build_dir/tools/normnet" "$@"
