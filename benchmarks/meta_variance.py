#!/usr/bin/env python
"""How noisy is LiLAW's meta-gradient on a validation batch of B/r samples? (issue 13)

Trains LiLAW on ECG5000 (stacked LSTM, ``cpu-ecg5000`` preset, 30 % uniform label noise,
seed 0) with the package's own loop, and after chosen epochs freezes the network and
α, β, δ and draws ``--draws`` random validation mini-batches of ``ceil(B / r)`` samples
for r = 1, 2, 4, 8 (B = 32, drawn without replacement as the meta step draws them). For
each batch it computes the meta-gradient ``∂L_W/∂(α, β, δ)`` with ``LiLAW.meta_loss``
(the same function the meta step differentiates) and reports, per r:

* ``variance``: the trace of the covariance of the three gradient components over draws;
* ``variance_per_param``: the three variances;
* ``mean_grad``: the mean gradient, and the full-validation-set gradient (the target);
* ``snr``: ``|full gradient|² / variance`` (signal-to-noise of one meta step).

Sampling m of N validation samples without replacement gives a variance of
``σ²/m · (N - m)/(N - 1)``; the JSON holds that prediction (``predicted_variance``, from
the per-sample variance σ² of the full set) next to the measurement. The validation
outputs are computed once per epoch in eval mode (the meta step's mode) and batches
index them: the LSTM has no batch norm, so this equals one forward per batch.

Writes ``benchmarks/results/meta_variance/ecg5000.json`` (a subfolder: the overhead files stay
alone in ``benchmarks/results/*.json``); ``make`` does not run it.

Usage::

    python benchmarks/meta_variance.py                  # about 1.5 CPU-minutes (20 epochs + draws)
    python benchmarks/meta_variance.py --epochs 2,5 --draws 200 --out /tmp/mv
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from lilaw_edu._internal.files import atomic_write_bytes  # noqa: E402
from lilaw_edu.training import engine  # noqa: E402
from lilaw_edu.training.checkpoint import LoopState  # noqa: E402
from lilaw_edu.training.config import config_from_preset  # noqa: E402
from lilaw_edu.training.fit import prepare_data  # noqa: E402
from lilaw_edu.training.loop import build_run, initial_model, train_epoch  # noqa: E402

DIVISORS = (1, 2, 4, 8)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", default="2,10,20", help="epochs after which to measure (default 2,10,20)")
    p.add_argument("--draws", type=int, default=2000, help="validation batches per r (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "meta_variance")
    args = p.parse_args(argv)
    try:
        args.epochs = sorted({int(e) for e in args.epochs.split(",") if e.strip()})
    except ValueError:
        p.error(f"--epochs must be a comma list of integers, got {args.epochs!r}")
    if not args.epochs or args.epochs[0] < 2:
        p.error(f"--epochs must be integers >= 2 (epoch 1 is the warm-up without meta steps), got {args.epochs}")
    if args.draws < 2:
        p.error(f"--draws must be >= 2, got {args.draws}")
    return args


def meta_gradients(lilaw, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∂(mean W·ℓ)/∂(α, β, δ) of one batch, shape (3,), through ``LiLAW.meta_loss``."""
    params = [lilaw.alpha, lilaw.beta, lilaw.delta]
    return torch.stack(torch.autograd.grad(lilaw.meta_loss(logits, y), params, allow_unused=False))


def measure(lilaw, logits: torch.Tensor, y: torch.Tensor, batch_size: int, draws: int,
            generator: torch.Generator) -> dict:
    """Spread of the meta-gradient over ``draws`` random batches of ``batch_size`` validation samples."""
    n = int(y.shape[0])
    grads = torch.stack([meta_gradients(lilaw, logits[idx], y[idx]) for idx in
                         (torch.randperm(n, generator=generator)[:batch_size] for _ in range(draws))]).double()
    per_sample = torch.stack([meta_gradients(lilaw, logits[i:i + 1], y[i:i + 1]) for i in range(n)]).double()
    sigma2 = per_sample.var(dim=0, unbiased=False).sum().item()
    m = min(batch_size, n)
    full = per_sample.mean(dim=0)
    variance = grads.var(dim=0, unbiased=True)
    return {"batch_size": m, "draws": draws, "variance": variance.sum().item(),
            "variance_per_param": variance.tolist(), "mean_grad": grads.mean(dim=0).tolist(),
            "full_grad": full.tolist(), "predicted_variance": sigma2 / m * (n - m) / (n - 1),
            "snr": (full.pow(2).sum() / variance.sum()).item()}


def main(argv=None) -> int:
    """Train, measure after each requested epoch, write the JSON."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    config = config_from_preset("cpu-ecg5000", noise="uniform", rate=0.3, seed=args.seed,
                                epochs=max(args.epochs), temperature_scaling=False)
    splits, info = prepare_data(config)
    run = build_run(config, "lilaw", splits, initial_model(config, splits).state_dict(), info)
    state, generator = LoopState(method="lilaw", config=run.config.to_dict()), torch.Generator().manual_seed(1)
    out = {"schema": 1, "benchmark": "benchmarks/meta_variance.py (issue 13)", "dataset": "ecg5000",
           "noise": "uniform 30 %", "model": type(run.model).__name__, "batch_size": config.batch_size,
           "n_val": int(splits.y_val.shape[0]), "divisors": list(DIVISORS), "draws": args.draws,
           "load_average_start": list(os.getloadavg()), "epochs": {}}
    while state.epoch < max(args.epochs):
        record = train_epoch(run, state)
        state.epoch = record["epoch"]
        if state.epoch in args.epochs:
            logits = engine.predict_logits(run.model, run.data["val"], device=run.device)
            y = run.data["val"].y
            out["epochs"][str(state.epoch)] = {
                "alpha_beta_delta": list(run.lilaw.state().values()),
                "val_acc": record["val_acc"],
                "by_r": {str(r): measure(run.lilaw, logits, y, math.ceil(config.batch_size / r), args.draws,
                                         generator) for r in DIVISORS}}
            print(f"epoch {state.epoch}: " + ", ".join(
                f"r={r} var {v['variance']:.3g} (pred {v['predicted_variance']:.3g}) snr {v['snr']:.3g}"
                for r, v in out["epochs"][str(state.epoch)]["by_r"].items()))
    out["load_average_end"] = list(os.getloadavg())
    out["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "ecg5000.json"
    atomic_write_bytes(path, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
