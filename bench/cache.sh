#!/usr/bin/env bash
# The on-disk activation cache on ../shared/data/footwear at 224 px, a grid with unfreeze_depth
# [0, 2, 4]: (a) the first run (cold cache), (b) the same grid plus one new learning rate,
# (c) two processes at once on one database (warm cache), (d) the frozen pass alone (head-only
# grid, no cache) at 12,000 vs 3,000 images. For each: wall time, the `backbone pass:` line and
# peak memory: RSS (what /usr/bin/time reports: the process's own memory plus the cache pages it
# has mapped), and for (c) the peak of the two processes' PSS summed (mapped pages shared by both
# count once between them). Prints the cache's size on disk and bytes per image per recording.
#
# Usage: bench/cache.sh [BINARY]   env: IMAGES (12000) SIZE (224) SMALL (3000)
# BINARY defaults to ./target/release/gridsearch. Needs ../shared/data/footwear.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-./target/release/gridsearch}")
images=${IMAGES:-12000}
size=${SIZE:-224}
small=${SMALL:-3000}
root=$(realpath ../shared/data/footwear)
weights=$(realpath models/efficientnet_lite0.safetensors)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# grid NAME IMAGES LEARNING_RATES DEPTHS: a grid over IMAGES photos (three classes, 80% train).
grid() {
    local per_class=$(($2 / 3)) val=$(($2 / 15))
    cat > "$work/$1.toml" <<TOML
[study]
name = "cache-bench"
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
batch_size = 64
head_epochs = 1
finetune_epochs = 1
patience = 0
[grid]
learning_rate = $3
unfreeze_depth = $4
TOML
}

# Peak RSS (MB) from a /usr/bin/time -v report.
peak_mb() { awk -F': ' '/Maximum resident/ { printf "%.0f", $2 / 1024 }' "$1"; }
wall_s() { awk -F': ' '/Elapsed/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.1f", s }' "$1"; }
load() { uptime | sed 's/.*average: //'; }

# run LABEL GRID DB [ARGS...]: one timed run; prints its figures.
run() {
    local label=$1 grid=$2 db=$3
    shift 3
    /usr/bin/time -v -o "$work/$label.time" "$bin" --db "$db" run "$work/$grid.toml" "$@" \
        2> "$work/$label.err" > /dev/null || { tail -5 "$work/$label.err" >&2; exit 1; }
    echo "($label) wall $(wall_s "$work/$label.time") s, peak RSS $(peak_mb "$work/$label.time") MB, load $(load)"
    echo "    $(grep '^backbone pass:' "$work/$label.err" || echo 'no backbone pass (nothing to run)')"
}

echo "== activation cache: $images photos at $size px; $(nproc) cores; load $(load)"
grid full "$images" "[1e-3]" "[0, 2, 4]"
run a full "$work/a.db"
grid wider "$images" "[1e-3, 3e-3]" "[0, 2, 4]"
run b wider "$work/a.db"

echo "cache on disk:"
du -sb "$work/cache"/* | awk '{ printf "    %s: %.0f MB\n", $2, $1 / 1e6 }'
for f in "$work"/cache/*/*.safetensors; do
    name=$(basename "$f")
    rows=$(python3 -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]; print(json.loads(f.read(n))['rows']['shape'][0])" "$f")
    echo "    ${name%%.*}: $(stat -c %s "$f") bytes, $rows images: $(( ($(stat -c %s "$f") - 4096) / rows - 32 )) bytes of rows per image (+32 for its SHA-256)"
done

# (c) two processes on one new database, both reading the warm cache; their memory sampled.
grid two "$images" "[1e-3, 3e-3, 1e-2]" "[0, 2, 4]"
pss_peak=0
"$bin" --db "$work/c.db" run "$work/two.toml" 2> "$work/c1.err" > /dev/null &
p1=$!
"$bin" --db "$work/c.db" run "$work/two.toml" 2> "$work/c2.err" > /dev/null &
p2=$!
declare -A rss_peak=([$p1]=0 [$p2]=0) anon_peak=([$p1]=0 [$p2]=0)
start=$(date +%s%N)
while kill -0 "$p1" 2> /dev/null || kill -0 "$p2" 2> /dev/null; do
    sum=0
    for p in $p1 $p2; do
        [ -r "/proc/$p/smaps_rollup" ] || continue
        read -r rss pss anon < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 } END { print r + 0, p + 0, a + 0 }' "/proc/$p/smaps_rollup" 2> /dev/null || echo "0 0 0") || continue
        sum=$((sum + pss))
        if [ "$rss" -gt "${rss_peak[$p]}" ]; then rss_peak[$p]=$rss; fi
        if [ "$anon" -gt "${anon_peak[$p]}" ]; then anon_peak[$p]=$anon; fi
    done
    if [ "$sum" -gt "$pss_peak" ]; then pss_peak=$sum; fi
    sleep 0.2
done
wait "$p1" "$p2"
end=$(date +%s%N)
echo "(c) two processes, one database: wall $(( (end - start) / 1000000000 )) s, load $(load)"
for p in $p1 $p2; do
    echo "    pid $p: peak RSS $((rss_peak[$p] / 1024)) MB (of it anonymous $((anon_peak[$p] / 1024)) MB)"
done
echo "    peak PSS of both together: $((pss_peak / 1024)) MB (the cache: $(du -sm "$work/cache" | cut -f1) MB)"
for e in c1 c2; do echo "    $(grep '^backbone pass:' "$work/$e.err" || echo "$e: no backbone pass")"; done
trials=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"select count(*), count(distinct worker) from trials where state='complete'\").fetchone())" "$work/c.db")
echo "    (complete trials, distinct workers): $trials"

# (d) the frozen pass alone, no cache: peak RSS at $small and $images images.
for n in "$small" "$images"; do
    grid "pass-$n" "$n" "[1e-3]" "[0]"
    sed -i 's/finetune_epochs = 1/finetune_epochs = 0/' "$work/pass-$n.toml"
    run "d-$n" "pass-$n" "$work/d-$n.db" --no-cache
done
