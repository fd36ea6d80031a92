#!/usr/bin/env bash
# Installs the CUDA compiler and headers that `--features cuda` needs from PyPI's NVIDIA wheels
# (no system CUDA toolkit, no GPU needed), then prints the environment to build with.
#
# Usage:  eval "$(tools/cuda-toolchain.sh)"     # then: cargo check --release --features cuda
#         tools/cuda-toolchain.sh [DIR]          # DIR: where the venv goes (default .cuda-toolchain)
#
# The versions are pinned on purpose (see README, "CUDA"): cudarc 0.19.10's build script knows
# CUDA up to 13.4 and panics on 13.5, and nvcc, crt, nvvm and the runtime headers must be one
# version or ptxas refuses the PTX that nvvm writes. The CUDA 12 wheels ship ptxas but no nvcc.
# What this cannot provide: libcuda (the driver's library). `cargo check` works with this
# toolchain alone; a full `cargo build` links -lcuda and so needs a GPU machine's driver (or a
# toolkit's lib64/stubs/libcuda.so).
# Progress goes to stderr; only the `export` lines go to stdout.
set -euo pipefail

DIR=${1:-${CUDA_TOOLCHAIN_DIR:-.cuda-toolchain}}
CUDA_VERSION=13.4
CUDA_PATCH=13.4.92
# The compute capability candle-kernels compiles its PTX for when no GPU can be queried
# (90 = H100/H200). On a GPU machine nvidia-smi's answer is used instead.
COMPUTE_CAP=${CUDA_COMPUTE_CAP:-}

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PY=${PYTHON:-python3}

if [ ! -x "$DIR/venv/bin/python" ]; then
    echo "cuda-toolchain: creating $DIR/venv" >&2
    "$PY" -m venv "$DIR/venv" >&2
fi
VPY="$DIR/venv/bin/python"
STAMP="$DIR/venv/.installed-$CUDA_PATCH"
if [ ! -e "$STAMP" ]; then
    echo "cuda-toolchain: installing the NVIDIA $CUDA_PATCH wheels" >&2
    "$VPY" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvcc==$CUDA_PATCH" \
        "nvidia-cuda-runtime==$CUDA_PATCH" \
        "nvidia-cuda-crt==$CUDA_VERSION.*" \
        "nvidia-nvvm==$CUDA_VERSION.*" \
        "nvidia-cuda-cccl<13.5" >&2
    touch "$STAMP"
fi

C=$("$VPY" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
if [ ! -d "$C/bin" ]; then
    echo "cuda-toolchain: no $C/bin after install: the wheels' layout changed" >&2
    exit 1
fi
# Some wheels unpack their binaries without the executable bit.
chmod +x "$C"/bin/* 2>/dev/null || true
if [ -d "$C/nvvm/bin" ]; then chmod +x "$C"/nvvm/bin/* 2>/dev/null || true; fi

NVCC_VERSION=$("$C/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
if [ "$NVCC_VERSION" != "$CUDA_VERSION" ]; then
    echo "cuda-toolchain: nvcc is $NVCC_VERSION, expected $CUDA_VERSION" >&2
    exit 1
fi

if [ -z "$COMPUTE_CAP" ] && command -v nvidia-smi >/dev/null 2>&1; then
    COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
        head -n1 | tr -d '. ' || true)
fi
COMPUTE_CAP=${COMPUTE_CAP:-90}
echo "cuda-toolchain: nvcc $NVCC_VERSION at $C, compute capability $COMPUTE_CAP" >&2

cat <<EOF
export PATH="$C/bin:\$PATH"
export CUDA_ROOT="$C"
export CUDA_PATH="$C"
export CUDA_HOME="$C"
export CUDA_COMPUTE_CAP="$COMPUTE_CAP"
EOF
