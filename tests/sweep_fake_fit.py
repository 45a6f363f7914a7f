"""A stand-in trainer for sweep tests that run in other processes (``LILAW_SWEEP_FIT=sweep_fake_fit:fit``).

Each call drops a marker file in ``$LILAW_FAKE_MARKS`` (so a test can tell which runs started),
sleeps ``$LILAW_FAKE_SECONDS`` and returns deterministic metrics derived from the seed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def fit(config, methods, out_dir=None, resume=False, progress=True):
    marks = os.environ.get("LILAW_FAKE_MARKS")
    if marks:
        Path(marks).mkdir(parents=True, exist_ok=True)
        (Path(marks) / f"{config.seed}-{config.rate}-{config.clean_val}-{os.getpid()}-{time.time_ns()}").touch()
    time.sleep(float(os.environ.get("LILAW_FAKE_SECONDS", "0")))
    base = 0.5 + 0.01 * config.seed
    runs = {m: {"metrics": {"test": {"top1": base + 0.02 * i, "top5": None, "auroc": 0.7, "auroc_weighted": 0.71},
                            "best_epoch": 1, "epochs_run": config.epochs},
                "lilaw": None, "history": [], "wall_time_s": 0.01}
            for i, m in enumerate(methods)}
    return {"config": config.to_dict(), "methods": runs, "data": {"sizes": {"train": 100, "val": 10, "test": 10}},
            "noise": {"kind": config.noise, "rate": config.rate}, "init_state_sha256": "x", "environment": {}}
