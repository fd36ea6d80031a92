#!/usr/bin/env bash
# Which model settings should the shipped grids use? (issue 15: department >= 0.99 accuracy,
# every yes/no attribute >= 0.90 balanced accuracy, on this machine in a sensible time.)
#
# Configurations = set x image size x augmentation:
#   attributes      the seven shipped grids (grids/*.toml) in one `run` (one shared backbone pass)
#                   on the 480 hand-labelled photos of data/footwear, image_size overridden;
#                   each study's score is its objective (department: accuracy, the six yes/no
#                   attributes: balanced accuracy), on its own stratified 25% validation split.
#   department-12k  department on $DEPT_ROOT (12,000 photos, 4,000 per class), its own
#                   stratified split (val_fraction 0.25: 3,000 validation photos) and a small grid
#                   sized for a 2-core machine ($DEPT_AXES).
#   size            128 or 224 (the photos are 136 x 102: 224 upsamples).
#   aug             off, or on: $AUGMENT added to [train] (needs a binary with augmentation;
#                   one without it refuses the keys, and this script then says so and prints no row).
# For each: every study's best trial (score, kept epoch, settings), the mean score per axis value,
# the number of validation photos (and of the rarer class), wall time and peak RSS
# (/usr/bin/time -v), the `backbone pass:` line and the load average before and after.
#
# Usage: bench/models.sh [BINARY] [SET|all [SIZE|all [off|aug|all]]]
#   defaults: ./target/release/gridsearch, all sets, sizes 128 and 224, augmentation off.
#   e.g. bench/models.sh attributes 224 aug
# env:
#   AUGMENT      [train] lines for "aug" (\n-separated; default views 4, hflip, crop 0.7, colour 0.2: the shipped grids' view set)
#   ATTR_TRAIN   more [train] lines for the attribute grids, e.g. 'finetune_epochs = 5'
#   ATTR_AXES    [grid] axes replaced in the attribute grids, e.g. 'unfreeze_depth = [2, 4, 6]'
#   DEPT_TRAIN   [train] lines for department-12k (default 'batch_size = 64')
#   DEPT_AXES    the whole [grid] of department-12k
#                (default lr [1e-3], dropout [0.3], head_size [0], unfreeze_depth [0, 2])
#   DEPT_ROOT    (/work/shared/data/footwear)
#   CACHE_DIR    activation cache shared by the configurations (/tmp/gridsearch-models-cache;
#                "none": --no-cache). A second configuration at the same size reuses the pass
#                (the `backbone pass:` line says how many images came from the cache).
#   NICE         niceness of the runs (5; the machine is shared)
#   RESULTS      also append the tables to this markdown file
#   KEEP         a folder to keep each configuration's database and logs in (default: deleted)
#   LABEL        a note for the config column (e.g. "depth 2,4,6")
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

bin=./target/release/gridsearch
if [ $# -gt 0 ] && [ -f "$1" ] && [ -x "$1" ]; then bin=$1; shift; fi
bin=$(realpath "$bin")
sets=${1:-all}
sizes=${2:-all}
augs=${3:-off}
[ "$sets" = all ] && sets="attributes department-12k"
[ "$sizes" = all ] && sizes="128 224"
[ "$augs" = all ] && augs="off aug"

augment=${AUGMENT:-'augment.views = 4\naugment.hflip = true\naugment.crop = 0.7\naugment.colour = 0.2'}
dept_root=$(realpath "${DEPT_ROOT:-/work/shared/data/footwear}")
dept_train=${DEPT_TRAIN:-'batch_size = 64'}
dept_axes=${DEPT_AXES:-'learning_rate = [1e-3]\ndropout = [0.3]\nhead_size = [0]\nunfreeze_depth = [0, 2]'}
cache_dir=${CACHE_DIR:-/tmp/gridsearch-models-cache}
niceness=${NICE:-5}
label=${LABEL:-}

work=$(mktemp -d /tmp/models-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; keep=$(realpath "$KEEP"); fi

load() { uptime | sed 's/.*average: //'; }
peak_mb() { awk -F': ' '/Maximum resident/ { printf "%.0f", $2 / 1024 }' "$1"; }
wall_s() { awk -F': ' '/Elapsed/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; printf "%.1f", s }' "$1"; }

# edit_grid SRC DST SIZE TRAIN_LINES GRID_LINES REPLACE_GRID [KEY=VALUE...]: a copy of SRC with
# paths made absolute (grids use paths relative to the grid file), image_size = SIZE, each of
# TRAIN_LINES set in [train] (replacing a key already there), GRID_LINES set in [grid] (the whole
# [grid] replaced when REPLACE_GRID is 1; a key it makes an axis leaves [train]), and top-level
# `section.key=value` overrides.
edit_grid() {
    python3 - "$@" <<'PY'
import os, re, sys
src, dst, size, train, grid, replace_grid, *overrides = sys.argv[1:]
base = os.path.dirname(os.path.realpath(src))
def lines(s): return [l.strip() for l in s.replace('\\n', '\n').split('\n') if l.strip()]
sections, order, cur = {}, [], ''
sections[''] = []; order.append('')
for line in open(src).read().splitlines():
    m = re.match(r'^\[(\w+)\]', line)
    if m:
        cur = m.group(1); sections[cur] = []; order.append(cur); continue
    sections[cur].append(line)
def key(l):
    m = re.match(r'^\s*([A-Za-z0-9_.]+)\s*=', l)
    return m.group(1) if m else None
def put(sec, new):
    body = sections.setdefault(sec, [])
    if sec not in order: order.append(sec)
    k = key(new)
    for i, l in enumerate(body):
        if key(l) == k:
            body[i] = new; return
    # after the last key=value line of the section
    last = max([i for i, l in enumerate(body) if key(l)] or [-1])
    body.insert(last + 1, new)
def absolute(l):
    m = re.match(r'^(\s*(root|manifest|weights|train|val)\s*=\s*")([^"]+)(".*)$', l)
    if m and not os.path.isabs(m.group(3)):
        return m.group(1) + os.path.normpath(os.path.join(base, m.group(3))) + m.group(4)
    return l
for sec in order:
    sections[sec] = [absolute(l) for l in sections[sec]]
put('data', f'image_size = {size}')
for o in overrides:
    sec, rest = o.split('.', 1)
    k, v = rest.split('=', 1)
    put(sec, f'{k} = {v}')
for l in lines(train): put('train', l)
if replace_grid == '1':
    sections['grid'] = []
    if 'grid' not in order: order.append('grid')
for l in lines(grid): put('grid', l)
# a key made an axis leaves [train] (the tool refuses one set in both)
axes = {key(l) for l in sections['grid'] if key(l)}
if 'train' in sections:
    sections['train'] = [l for l in sections['train'] if key(l) not in axes]
with open(dst, 'w') as f:
    for sec in order:
        if sec: f.write(f'[{sec}]\n')
        f.write('\n'.join(sections[sec]).rstrip('\n') + '\n\n')
PY
}

# val_counts GRID: "validation photos (the rarer class)" of a grid, the split's own rule:
# per class round(n * val_fraction), half away from zero (src/data/split.rs).
val_counts() {
    python3 - "$1" <<'PY'
import csv, math, os, sys, tomllib, collections
g = tomllib.load(open(sys.argv[1], 'rb'))
d = g['data']; frac = d.get('val_fraction', 0.2)
if 'manifest' in d:
    rows = list(csv.DictReader(open(d['manifest'])))
    c = collections.Counter(r[d['label']] for r in rows if r[d['label']] not in d.get('ignore', []) and r[d['label']] != '')
else:
    c = {k: len(os.listdir(os.path.join(d['root'], k))) for k in os.listdir(d['root']) if os.path.isdir(os.path.join(d['root'], k))}
v = {k: max(1, min(n - 1, math.floor(n * frac + 0.5))) for k, n in c.items()}
rare = min(v, key=v.get)
print(f"{sum(v.values())} ({rare}: {v[rare]})")
PY
}

# study_rows DB GRID CONFIG: one markdown row per study: best trial and the mean per axis value.
study_rows() {
    local db=$1 grid=$2 config=$3 study
    study=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['study']['name'])" "$grid")
    "$bin" --db "$db" report --study "$study" --format json > "$work/report.json"
    python3 - "$work/report.json" "$config" "$(val_counts "$grid")" <<'PY'
import json, sys, collections
r = json.load(open(sys.argv[1])); config, val = sys.argv[2], sys.argv[3]
obj = r['objective']
field = {'accuracy': 'val_accuracy', 'balanced_accuracy': 'balanced_accuracy', 'f1': 'f1', 'val_loss': 'val_loss'}[obj]
rows = r['ranked']
if not rows:
    print(f"| {config} | {r['study']} | {obj} | {val} | no complete trial | | | | |"); sys.exit()
b = rows[0]
def fmt(v): return f"{v:g}" if isinstance(v, (int, float)) else str(v)
settings = ', '.join(f"{k} {fmt(v)}" for k, v in b['params'].items())
kept = f"{b['kept']['phase']} {b['kept']['epoch']}" if b.get('kept') else '-'
means = []
for axis in r['axes']:
    by = collections.defaultdict(list)
    for t in rows: by[fmt(t['params'].get(axis))].append(t[field])
    if len(by) > 1:
        means.append(f"{axis} " + ' / '.join(f"{k}: {sum(v)/len(v):.3f}" for k, v in sorted(by.items(), key=lambda kv: float(kv[0]) if kv[0].replace('.', '').replace('e-', '').isdigit() else 0)))
n = r['counts']['complete']; failed = r['counts']['failed']
print(f"| {config} | {r['study']} | {obj} | {val} | **{b[field]:.4f}** | {b['val_accuracy']:.4f} | {settings} (kept: {kept}) | {n}{f' ({failed} failed)' if failed else ''} | {'; '.join(means)} |")
PY
}

run_rows=() study_lines=() failures=0
# one SET SIZE AUG: one configuration, timed.
one() {
    local set=$1 size=$2 aug=$3 dir grids=() config train_extra=''
    config="$set $size px, $([ "$aug" = aug ] && echo "aug on" || echo "aug off")${label:+, $label}"
    dir="$work/$set-$size-$aug"
    mkdir -p "$dir"
    # "off" turns off the augmentation some shipped grids have; "aug" replaces their settings.
    if [ "$aug" = aug ]; then train_extra=$augment; else train_extra='augment.views = 0'; fi
    case $set in
        attributes)
            for g in grids/*.toml; do
                edit_grid "$g" "$dir/$(basename "$g")" "$size" \
                    "${ATTR_TRAIN:-}${ATTR_TRAIN:+\n}$train_extra" "${ATTR_AXES:-}" 0
                grids+=("$dir/$(basename "$g")")
            done ;;
        department-12k)
            edit_grid grids/department.toml "$dir/department-12k.toml" "$size" \
                "$dept_train\n$train_extra" "$dept_axes" 1 \
                "study.name=\"department-12k\"" "data.root=\"$dept_root\""
            grids+=("$dir/department-12k.toml") ;;
        *) echo "unknown set: $set (attributes or department-12k)" >&2; exit 2 ;;
    esac
    local cache_args=(--cache-dir "$cache_dir")
    [ "$cache_dir" = none ] && cache_args=(--no-cache)
    local load_before rc=0
    load_before=$(load)
    # `plan` validates each grid first: a binary without a setting refuses it here, before any work.
    local trials=0 g
    for g in "${grids[@]}"; do
        "$bin" plan "$g" > "$dir/plan" 2> "$dir/stderr" || { rc=$?; break; }
        trials=$((trials + $(grep -c '^│ [0-9]' "$dir/plan" || true)))
    done
    if [ "$rc" -eq 0 ]; then
        echo "== $config: ${#grids[@]} grids, $trials trials; load $load_before" >&2
        nice -n "$niceness" /usr/bin/time -v -o "$dir/time" "$bin" --db "$dir/run.db" run "${grids[@]}" \
            "${cache_args[@]}" > "$dir/stdout" 2> "$dir/stderr" || rc=$?
    fi
    if [ -n "${keep:-}" ]; then cp -r "$dir" "$keep/"; fi
    if [ "$rc" -ne 0 ]; then
        failures=$((failures + 1))
        if [ "$aug" = aug ] && grep -qi 'augment' "$dir/stderr"; then
            echo "error: $config: this binary ($bin) does not know the augment.* settings (augmentation not merged yet?); no row. It said:" >&2
        else
            echo "error: $config: failed (exit $rc); no row. It said:" >&2
        fi
        grep -v '^\s*$' "$dir/stderr" | tail -5 | sed 's/^/    /' >&2
        return 0
    fi
    local pass
    pass=$(tr '\r' '\n' < "$dir/stderr" | grep '^backbone pass:' | sed 's/^backbone pass: //' | paste -sd ';' -)
    run_rows+=("| $config | $(wall_s "$dir/time") s | $(peak_mb "$dir/time") MB | ${pass:-none} | $load_before | $(load) |")
    echo "${run_rows[-1]}" >&2
    for g in "${grids[@]}"; do
        study_lines+=("$(study_rows "$dir/run.db" "$g" "$config")")
        echo "${study_lines[-1]}" >&2
    done
}

echo "# bench/models.sh on $(hostname), $(nproc) cores, $(date -u +%FT%TZ), $("$bin" --version)" >&2
for set in $sets; do
    for size in $sizes; do
        for aug in $augs; do one "$set" "$size" "$aug"; done
    done
done

{
    echo
    echo "Runs ($(nproc) cores, nice $niceness, binary $("$bin" --version), $(git rev-parse --short HEAD), $(date -u +%F)):"
    echo
    echo "| config | wall | peak RSS | backbone pass | load before (1/5/15 min) | load after |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${run_rows[@]}"
    echo
    echo "Best trial of each study (score = the study's objective on its validation photos; kept = the epoch whose weights it kept):"
    echo
    echo "| config | study | objective | val photos (rarest class) | best score | its accuracy | best trial (kept epoch) | trials | mean score per axis value |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${study_lines[@]}"
} > "$work/tables.md"
[ ${#run_rows[@]} -gt 0 ] || { echo "no configuration produced figures" >&2; exit 1; }
cat "$work/tables.md"
if [ -n "${RESULTS:-}" ]; then cat "$work/tables.md" >> "$RESULTS"; fi
[ "$failures" -eq 0 ]
