#!/usr/bin/env bash
# The GPU check and benchmark, one command (under 10 minutes on a GPU machine), ending in a table:
#   1. builds gridsearch with --features cuda (nvcc from the system, else tools/cuda-toolchain.sh;
#      the GPU driver provides libcuda for the link),
#   2. runs tests/device.rs on the GPU: pooled features vs the PyTorch / torchvision fixtures
#      (<= 1e-3) and fine-tuning gradients vs the CPU's,
#   3. runs the department benchmark grid (bench/department.toml, 16 trials) with --device,
#   4. exports its best trial and predicts 4 photos with it on the GPU and on the CPU (an exported
#      model runs on either device; the probabilities must agree),
#   5. a 224 px frozen pass over ../shared/data/footwear (12,000 photos): `gridsearch index`,
# and prints img/s, trial times and peak GPU memory (nvidia-smi, sampled every 100 ms).
#
# Usage: bench/gpu.sh [--device cuda|cuda:N|cpu] [--quick]
#   --device cpu  runs the same steps on a CPU build: a check of this script's plumbing, not a
#                 GPU figure.
#   --quick       2 trials instead of 16 and 300 photos instead of 12,000 (for the plumbing check).
# Needs ../shared/data/footwear and ../shared/fixtures (as the tests do). Writes under runs/gpu-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device=$2; shift 2 ;;
        --device=*) device=${1#--device=}; shift ;;
        --quick) quick=1; shift ;;
        *) echo "usage: bench/gpu.sh [--device cuda|cuda:N|cpu] [--quick]" >&2; exit 2 ;;
    esac
done

work=runs/gpu-bench
rm -rf "$work"
mkdir -p "$work"
log() { echo "== $*" >&2; }
seconds_since() { echo "$(( $(date +%s%N) / 1000000 - $1 ))" | awk '{ printf "%.1f", $1 / 1000 }'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Peak GPU memory of one step: nvidia-smi samples in the background while it runs.
sampler=""
gpu_sample_start() {
    : >"$work/gpu-mem.txt"
    if [ "$device" != cpu ] && command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 \
            >"$work/gpu-mem.txt" 2>/dev/null &
        sampler=$!
    fi
}
gpu_sample_stop() {
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
        sampler=""
    fi
    awk 'NR == 1 || $1 > max { max = $1 } END { if (NR) printf "%d MiB", max; else printf "n/a" }' \
        "$work/gpu-mem.txt"
}
trap 'if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi' EXIT

# ---- 1. build
if [ "$device" = cpu ]; then
    features=()
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
else
    features=(--features cuda)
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-cuda}
    if ! command -v nvidia-smi >/dev/null; then
        echo "bench/gpu.sh: no nvidia-smi: this is not a GPU machine (use --device cpu to check the plumbing)" >&2
        exit 2
    fi
    gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
    if ! command -v nvcc >/dev/null; then
        log "no nvcc on PATH: the toolchain from PyPI's wheels (tools/cuda-toolchain.sh --link)"
        eval "$(tools/cuda-toolchain.sh --link)"
    elif [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
        CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d '. ')
        export CUDA_COMPUTE_CAP
    fi
fi
log "build (${features[*]:-cpu}) into $CARGO_TARGET_DIR"
t0=$(now_ms)
cargo build --release --quiet "${features[@]}"
cargo test --release --quiet "${features[@]}" --test device --no-run
build_s=$(seconds_since "$t0")
bin="$CARGO_TARGET_DIR/release/gridsearch"

# ---- 2. parity and gradients on the device
log "tests/device.rs with GRIDSEARCH_DEVICE=$device"
gpu_sample_start
GRIDSEARCH_DEVICE=$device cargo test --release --quiet "${features[@]}" --test device -- \
    --nocapture --test-threads 1 2>&1 | tee "$work/device-tests.txt" >&2
parity_mem=$(gpu_sample_stop)
under_test=$(sed -n 's/^device under test: //p' "$work/device-tests.txt" | head -n1)
if [ "$under_test" != "$device" ] && ! { [ "$device" = cuda ] && [ "$under_test" = cuda:0 ]; }; then
    echo "bench/gpu.sh: the tests ran on '$under_test', not '$device'" >&2
    exit 1
fi
effnet_diff=$(sed -n 's/^effnet pooled features vs PyTorch: max abs diff //p' "$work/device-tests.txt")
inception_diff=$(sed -n 's/^inception pooled features vs torchvision: relative diff //p' "$work/device-tests.txt")
grad_diff=$(sed -n 's/^fine-tuning gradients, device vs CPU: worst relative diff //p' "$work/device-tests.txt")

# ---- 3. the department benchmark grid
grid=bench/department.toml
if [ "$quick" = 1 ]; then
    # Two trials (one head-only, one fine-tuning 2 blocks) on the same data.
    grid=bench/gpu-quick.generated.toml
    sed -e 's/^name = "bench-department"/name = "bench-gpu-quick"/' \
        -e 's/^learning_rate = .*/learning_rate = [1e-3]/' \
        -e 's/^dropout = .*/dropout = [0.0]/' \
        -e 's/^head_size = .*/head_size = [0]/' bench/department.toml >"$grid"
    trap 'rm -f bench/gpu-quick.generated.toml; if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi' EXIT
fi
log "gridsearch run $grid --device $device"
gpu_sample_start
t0=$(now_ms)
"$bin" --db "$work/gs.db" run "$grid" --device "$device" >"$work/run.txt" 2>"$work/run-stderr.txt"
run_s=$(seconds_since "$t0")
run_mem=$(gpu_sample_stop)
cat "$work/run-stderr.txt" >&2
run_device=$(sed -n 's/^device: //p' "$work/run-stderr.txt" | head -n1)
pass_line=$(grep '^backbone pass:' "$work/run-stderr.txt" | head -n1)
pass_images=$(echo "$pass_line" | awk '{ print $3 }')
pass_size=$(echo "$pass_line" | awk '{ print $6 }')
pass_s=$(echo "$pass_line" | awk '{ print $9 }')
pass_rate=$(awk -v n="$pass_images" -v s="$pass_s" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "n/a" }')
trials_s=$(sed -n 's/^time: trials \([0-9.]*\) s/\1/p' "$work/run-stderr.txt" | head -n1)
trials=$(sed -n 's/^study [^:]*: \([0-9]*\) trials to run.*/\1/p' "$work/run-stderr.txt" | head -n1)

# ---- 4. the exported best trial on the device and on the CPU
log "export, then predict on $device and on cpu"
"$bin" --db "$work/gs.db" --quiet export --out "$work/models" >&2
# A glob, not `find | head`: under pipefail, head closing the pipe would fail the script.
photos=(../shared/data/footwear/boot/boot_1927.jpg)
for class in boot sandal shoe; do
    all=("../shared/data/footwear/$class"/*.jpg)
    photos+=("${all[0]}")
done
"$bin" predict --models "$work/models" --json --device "$device" "${photos[@]}" >"$work/predict-device.json"
"$bin" predict --models "$work/models" --json --device cpu "${photos[@]}" >"$work/predict-cpu.json"
predict_diff=$(python3 - "$work/predict-device.json" "$work/predict-cpu.json" <<'PY'
import json, sys

def probabilities(path):
    out = []
    for image in json.load(open(path)):
        for prediction in image["predictions"]:
            out.extend(prediction["probabilities"])
    return out

a, b = probabilities(sys.argv[1]), probabilities(sys.argv[2])
assert len(a) == len(b) and a, "the two devices predicted different things"
print(f"{max(abs(x - y) for x, y in zip(a, b)):.1e}")
PY
)

# ---- 5. a 224 px frozen pass over the photos
catalogue=../shared/data/footwear
if [ "$quick" = 1 ]; then
    catalogue=$work/catalogue
    for class in boot sandal shoe; do
        mkdir -p "$catalogue/$class"
        all=("$(pwd)/../shared/data/footwear/$class"/*.jpg)
        ln -s "${all[@]:0:100}" "$catalogue/$class/"
    done
fi
log "gridsearch index $catalogue --image-size 224 --device $device"
gpu_sample_start
"$bin" index "$catalogue" --image-size 224 --index "$work/index.safetensors" --device "$device" \
    >"$work/index.txt" 2>"$work/index-stderr.txt"
index_mem=$(gpu_sample_stop)
cat "$work/index-stderr.txt" >&2
index_line=$(grep '^index:' "$work/index-stderr.txt" | head -n1)
index_images=$(echo "$index_line" | awk '{ print $2 }')
index_s=$(echo "$index_line" | awk '{ print $6 }')
index_rate=$(echo "$index_line" | sed -n 's/.*(\([0-9]*\) per second).*/\1/p')

# ---- the table
{
    echo
    mode=""
    [ "$quick" = 1 ] && mode=", --quick"
    echo "## bench/gpu.sh on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ): --device $device$mode (run said: device ${run_device:-?})"
    [ -n "${gpu_name:-}" ] && echo "GPU: $gpu_name"
    echo
    printf '| %-44s | %-28s | %-14s |\n' "step" "result" "peak GPU mem"
    printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..30})" "$(printf -- '-%.0s' {1..16})"
    printf '| %-44s | %-28s | %-14s |\n' "build (${features[*]:-cpu})" "${build_s} s" "-"
    printf '| %-44s | %-28s | %-14s |\n' "EfficientNet-Lite0 features vs PyTorch" "max abs diff ${effnet_diff:-?}" "$parity_mem"
    printf '| %-44s | %-28s | %-14s |\n' "InceptionV3 features vs torchvision" "relative diff ${inception_diff:-skipped}" "(same run)"
    printf '| %-44s | %-28s | %-14s |\n' "fine-tuning gradients vs CPU" "relative diff ${grad_diff:-?}" "(same run)"
    printf '| %-44s | %-28s | %-14s |\n' "department grid: frozen pass ${pass_images:-?} img ${pass_size:-?} px" "${pass_s:-?} s, ${pass_rate} img/s" "$run_mem"
    printf '| %-44s | %-28s | %-14s |\n' "department grid: ${trials:-?} trials" "${trials_s:-?} s (whole run ${run_s} s)" "(same run)"
    printf '| %-44s | %-28s | %-14s |\n' "exported model: $device vs cpu probabilities" "max abs diff ${predict_diff}" "-"
    printf '| %-44s | %-28s | %-14s |\n' "frozen pass 224 px: ${index_images:-?} photos (index)" "${index_s:-?} s, ${index_rate:-?} img/s" "$index_mem"
} | tee "$work/table.md"
