"""Run the PyTorch + Optuna peer of ../../shared/bench with one of our benchmark grids.

Usage: python peer_grid.py PEER_DIR GRID_NAME [optuna_grid.py arguments...]
GRID_NAME: department (the peer's own grid) or head-only (27 trials, unfreeze 0).
Only the peer's GRID constant changes; its protocol, timing and output are its own.
"""

import sys

GRIDS = {
    "department": {"head_lr": [1e-3, 3e-3], "dropout": [0.0, 0.3], "hidden": [0, 256], "unfreeze": [0, 2]},
    "head-only": {"head_lr": [1e-3, 3e-3, 1e-2], "dropout": [0.0, 0.2, 0.5], "hidden": [0, 128, 512],
                  "unfreeze": [0]},
}

peer_dir, grid_name = sys.argv[1], sys.argv[2]
sys.path.insert(0, peer_dir)
import optuna_grid  # noqa: E402  (the peer, from PEER_DIR)

optuna_grid.GRID = GRIDS[grid_name]
sys.argv = [sys.argv[0]] + sys.argv[3:]
optuna_grid.main()
