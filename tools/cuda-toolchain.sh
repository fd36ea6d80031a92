#!/usr/bin/env bash
# Installs the CUDA compiler and headers that `--features cuda` needs from PyPI's NVIDIA wheels
# (no system CUDA toolkit, no GPU needed), then prints the environment to build with.
#
# Usage:  eval "$(tools/cuda-toolchain.sh)"     # then: cargo check --release --features cuda
#         tools/cuda-toolchain.sh [--link] [DIR] # DIR: where the venv goes (default .cuda-toolchain)
#
# --link also installs the libraries the final link names besides libcuda (nvrtc, curand,
# cublas, cublasLt, cudart), gives them the unversioned names the linker looks for, and exports
# LIBRARY_PATH and LD_LIBRARY_PATH: with a GPU driver's libcuda that is all `cargo build
# --release --features cuda` needs.
#
# The versions are pinned on purpose (see README, "CUDA"): cudarc 0.19.10's build script knows
# CUDA up to 13.4 and panics on 13.5, and nvcc, crt, nvvm and the runtime headers must be one
# version or ptxas refuses the PTX that nvvm writes. The CUDA 12 wheels ship ptxas but no nvcc.
# What this cannot provide: libcuda (the driver's library). `cargo check` works with this
# toolchain alone; a full `cargo build` links -lcuda and so needs a GPU machine's driver (or a
# toolkit's lib64/stubs/libcuda.so).
# Progress goes to stderr; only the `export` lines go to stdout.
set -euo pipefail

LINK=0
if [ "${1:-}" = "--link" ]; then
    LINK=1
    shift
fi
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

LINK_STAMP="$DIR/venv/.installed-link-$CUDA_PATCH"
if [ "$LINK" = 1 ] && [ ! -e "$LINK_STAMP" ]; then
    echo "cuda-toolchain: installing the link libraries (nvrtc, curand, cublas)" >&2
    # cuBLAS and cuRAND number their own versions; any 13.x / 10.4.x works with CUDA 13.4.
    "$VPY" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvrtc==$CUDA_PATCH" \
        "nvidia-cublas==13.4.3.11" \
        "nvidia-curand==10.4.5.25" >&2
    touch "$LINK_STAMP"
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

if [ "$LINK" = 1 ]; then
    # The wheels ship libX.so.N only; the linker's -lX wants libX.so.
    LIBS="$DIR/lib"
    mkdir -p "$LIBS"
    for name in nvrtc curand cublas cublasLt cudart; do
        found=$(find "$C" -name "lib$name.so.*" | sort | head -n1)
        if [ -z "$found" ]; then
            echo "cuda-toolchain: lib$name.so.* is in none of the wheels" >&2
            exit 1
        fi
        ln -sf "$found" "$LIBS/lib$name.so"
    done
    if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so'; then
        echo "cuda-toolchain: no libcuda here (it comes with the GPU driver): cargo check works, the final link of cargo build does not" >&2
    fi
    echo "export LIBRARY_PATH=\"$LIBS:$(dirname "$(find "$C" -name 'libcublas.so.*' | head -n1)")\${LIBRARY_PATH:+:\$LIBRARY_PATH}\""
    echo "export LD_LIBRARY_PATH=\"$LIBS:$(dirname "$(find "$C" -name 'libcublas.so.*' | head -n1)")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
fi

cat <<EOF
export PATH="$C/bin:\$PATH"
export CUDA_ROOT="$C"
export CUDA_PATH="$C"
export CUDA_HOME="$C"
export CUDA_COMPUTE_CAP="$COMPUTE_CAP"
EOF
