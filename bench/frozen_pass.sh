#!/usr/bin/env bash
# The frozen pass alone (decode + backbone, streamed), old binary against new, side by side:
# a head-only grid (unfreeze_depth [0], head_epochs 1, finetune_epochs 0, one trial) over
# ../shared/data/footwear at 224 px; prints each run's `backbone pass:` line, the median
# images/s of ROUNDS rounds per binary, and the peak RSS (/usr/bin/time -v) of one run at each
# image count of RSS_IMAGES (it should not grow with the images beyond the kept activations:
# 1280 pooled f32 per image, 5 KB).
#
# Usage: bench/frozen_pass.sh [OLD_BINARY] [NEW_BINARY]
#   env: IMAGES (default 1500) ROUNDS (3) SIZE (224) RSS_IMAGES ("3000 6000"; "" to skip)
# OLD_BINARY defaults to /tmp/gridsearch_old (copy a build of the old code there); NEW_BINARY
# to ./target/release/gridsearch. Needs ../shared/data/footwear (4,000 photos per class).
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:-/tmp/gridsearch_old}
new=${2:-./target/release/gridsearch}
images=${IMAGES:-1500}
rounds=${ROUNDS:-3}
size=${SIZE:-224}
rss_images=${RSS_IMAGES-3000 6000}
root=$(realpath ../shared/data/footwear)
weights=$(realpath models/efficientnet_lite0.safetensors)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A grid over `$1` images (three classes, 80% train), written to $work/grid-$1.toml.
grid() {
    local per_class=$(($1 / 3)) val=$(($1 / 15))
    cat > "$work/grid-$1.toml" <<TOML
[study]
name = "frozen-pass-$1"
seed = 0
[data]
root = "$root"
image_size = $size
split = "ordered"
train_per_class = $((per_class - val))
val_per_class = $val
[model]
backbone = "efficientnet-lite0"
weights = "$weights"
[train]
batch_size = 32
head_epochs = 1
finetune_epochs = 0
patience = 0
[grid]
learning_rate = [1e-3]
unfreeze_depth = [0]
TOML
}

# One run of binary `$1` over `$2` images (a fresh database); prints its backbone line and
# leaves /usr/bin/time's report in $work/time.
run_once() {
    rm -rf "$work/db"
    mkdir -p "$work/db"
    /usr/bin/time -v -o "$work/time" "$1" run --db "$work/db/g.db" "$work/grid-$2.toml" \
        2> "$work/stderr" > /dev/null || { cat "$work/stderr" >&2; exit 1; }
    grep '^backbone pass:' "$work/stderr"
}

# images/s of a `backbone pass: N images at S px in T s` line.
rate() { awk '{ for (i = 1; i <= NF; i++) if ($i == "in") t = $(i + 1); print $3 / t }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
peak_mb() { awk -F': ' '/Maximum resident/ { printf "%.0f", $2 / 1024 }' "$work/time"; }

grid "$images"
echo "== frozen pass, $images images at $size px, $rounds rounds; $(nproc) cores; load: $(uptime | sed 's/.*load/load/')"
for binary in old new; do : > "$work/rates-$binary"; done
for round in $(seq "$rounds"); do
    for binary in old new; do
        path=$old
        [ "$binary" = new ] && path=$new
        line=$(run_once "$path" "$images")
        echo "$line" | rate >> "$work/rates-$binary"
        echo "round $round $binary: $line (peak RSS $(peak_mb) MB; load $(uptime | sed 's/.*average: //'))"
    done
done
for binary in old new; do
    echo "median $binary: $(median < "$work/rates-$binary") images/s"
done

for n in $rss_images; do
    grid "$n"
    for binary in old new; do
        path=$old
        [ "$binary" = new ] && path=$new
        line=$(run_once "$path" "$n")
        echo "peak RSS $binary at $n images: $(peak_mb) MB ($line)"
    done
done
