#!/usr/bin/env bash
# Retrieval on the full photo set: how often a photo's 5 nearest other photos share its
# department, how long indexing takes, and how long one query takes (decode, embed, search).
# Usage: bench/similarity.sh [CATALOGUE] [extra `gridsearch index` options, e.g. --image-size 112]
# Needs ../shared/data/footwear (12,000 photos) unless CATALOGUE is given.
set -euo pipefail
cd "$(dirname "$0")/.."
catalogue=${1:-../shared/data/footwear}
shift || true
index=runs/bench-footwear.index.safetensors
cargo build --release --quiet
rm -f "$index"
echo "== index (from scratch): $catalogue $*"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" ./target/release/gridsearch index "$catalogue" --index "$index" "$@"
echo "== index again (nothing changed: every embedding reused)"
/usr/bin/time -f "wall %e s" ./target/release/gridsearch index "$catalogue" --index "$index" "$@"
echo "== leave-one-out retrieval, k = 5"
./target/release/gridsearch similar --evaluate --k 5 --index "$index"
