"""Side-by-side benchmark: gridsearch vs the PyTorch + Optuna peer, same grids, same machine.

Runs each tool on each benchmark grid (department: 16 trials; head-only: 27 trials), interleaved,
`--rounds` times, and prints medians of wall time, best validation accuracy and peak RSS, with the
ratio. The peer runs "at its best" (glibc malloc told to keep freed memory, as in its README).
Needs ../../shared beside the repo and a peer virtualenv (see ../../shared/bench/README.md):

    python3 bench/compare.py --peer-python /tmp/peer/venv/bin/python --rounds 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PEER_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def timed(cmd, env=None):
    """Run cmd under /usr/bin/time; return (wall seconds, peak RSS MiB, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = ["/usr/bin/time", "-o", t.name, "-f", "%e %M"] + cmd
        load = os.getloadavg()[0]
        out = subprocess.run(full, env={**os.environ, **(env or {})}, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
        wall, rss_kb = t.read().split()[-2:]
        return float(wall), int(rss_kb) / 1024, out.stdout, load


def ours(binary, grid):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "gs.db")
        wall, rss, _, load = timed([binary, "--db", db, "--quiet", "run", str(REPO / "bench" / f"{grid.replace('-', '_')}.toml")])
        report = json.loads(subprocess.run([binary, "--db", db, "report", "--format", "json"],
                                           capture_output=True, text=True, check=True).stdout)
    return {"wall_s": wall, "peak_rss_mib": rss, "best_val_accuracy": report["ranked"][0]["val_accuracy"],
            "load_at_start": load}


def peer(python, grid):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "peer.json")
        args = [python, str(REPO / "bench" / "peer_grid.py"), str(SHARED / "bench"), grid,
                "--data", str(SHARED / "data" / "footwear"), "--train-per-class", "600",
                "--val-per-class", "200", "--size", "112", "--head-epochs", "3", "--finetune-epochs", "2",
                "--seed", "0", "--weights", str(REPO / "models" / "efficientnet_lite0.safetensors"),
                "--storage", f"sqlite:///{d}/optuna.db", "--out", out]
        wall, rss, _, load = timed(args, PEER_ENV)
        result = json.load(open(out))
    return {"wall_s": wall, "peak_rss_mib": rss, "best_val_accuracy": result["best"]["val_accuracy"],
            "load_at_start": load}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer-python", default="/tmp/peer/venv/bin/python")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--grids", default="department,head-only")
    ap.add_argument("--no-peer", action="store_true", help="time gridsearch only")
    ap.add_argument("--out", default=None, help="write the raw results as JSON here")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    binary = str(REPO / "target" / "release" / "gridsearch")
    results = {}
    for grid in args.grids.split(","):
        runs = {"gridsearch": [], "peer": []}
        for r in range(args.rounds):
            runs["gridsearch"].append(ours(binary, grid))
            print(f"{grid} round {r + 1}: gridsearch {runs['gridsearch'][-1]}", flush=True)
            if not args.no_peer:
                runs["peer"].append(peer(args.peer_python, grid))
                print(f"{grid} round {r + 1}: peer {runs['peer'][-1]}", flush=True)
        results[grid] = runs
    print("\n| grid | tool | median wall s | best val acc | peak RSS MiB | speed-up |")
    print("|---|---|---|---|---|---|")
    for grid, runs in results.items():
        med = {tool: statistics.median(r["wall_s"] for r in rs) for tool, rs in runs.items() if rs}
        for tool, rs in runs.items():
            if not rs:
                continue
            ratio = f"{med['peer'] / med[tool]:.1f}x" if "peer" in med else "-"
            print(f"| {grid} | {tool} | {med[tool]:.1f} | {statistics.median(r['best_val_accuracy'] for r in rs):.4f} "
                  f"| {max(r['peak_rss_mib'] for r in rs):.0f} | {ratio} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": results}, indent=2))


if __name__ == "__main__":
    main()
