#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package that normnet's build, tests and examples need.
# Idempotent: installs only what dpkg-query does not report as installed, and runs
# `apt-get update` only when something is missing. Works as root or through sudo.
#
#   bash scripts/setup.sh            # build + test dependencies
#   bash scripts/setup.sh --bench    # also the benchmark peer (libtorch); or NORMNET_BENCH=1
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bash scripts/setup.sh [--bench]

Installs the Debian 12 packages normnet needs to build and test (nothing if all are there).
  --bench   also install the benchmark peer libtorch-dev (same as NORMNET_BENCH=1)
EOF
}

# Why each package is needed: docs/building.md.
packages=(
  cmake ninja-build g++ pkg-config ccache  # toolchain (ccache only speeds up rebuilds)
  libdnnl-dev                              # oneDNN: matmul and convolution primitives
  ocl-icd-opencl-dev opencl-c-headers      # Debian's dnnl-config.cmake requires OpenCL
  zlib1g-dev                               # gzip'd IDX data files
  nlohmann-json3-dev                       # model configs (Keras-style JSON)
  libcli11-dev                             # the normnet command-line tool
  libstb-dev                               # image files
  libgtest-dev libgmock-dev                # the test suite
  libbenchmark-dev                         # kernel benchmarks
  dataset-fashion-mnist                    # the training data set
  clang libclang-rt-14-dev libomp-14-dev   # libFuzzer targets (scripts/fuzz.sh): clang 14, its fuzzer runtime, OpenMP
)
# libtorch finds BLAS through libblas.so.3; without OpenBLAS that is netlib's reference BLAS, which
# made the libtorch peer about 1.6x slower per step (docs/benchmarks.md). The OpenMP build honours
# OMP_NUM_THREADS like both benchmarked programs.
bench_packages=(libtorch-dev libopenblas0-openmp)

with_bench="${NORMNET_BENCH:-0}"
for arg in "$@"; do
  case "$arg" in
    --bench) with_bench=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ "$with_bench" == 1 ]]; then
  packages+=("${bench_packages[@]}")
fi

missing=()
for package in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)"
  if [[ "$status" != installed ]]; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#packages[@]} required Debian packages are installed"
  exit 0
fi

# As root run apt-get directly; otherwise through sudo. `env` sets the variable on the root side,
# which sudoers' env_reset would otherwise drop.
if [[ "$(id -u)" -eq 0 ]]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "setup.sh: need root to install ${missing[*]}: run as root or install sudo" >&2
  exit 1
fi

echo "setup.sh: installing ${missing[*]}"
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup.sh: installed ${missing[*]}"
