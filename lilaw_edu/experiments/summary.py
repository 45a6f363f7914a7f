"""What a sweep record keeps of a :func:`lilaw_edu.training.fit.fit` output.

* :func:`summarise_fit` turns the fit output into the ``result`` part of a record: per-method
  metrics and per-epoch history, and, when the run recorded per-sample LiLAW weights or
  difficulty scores, their mislabel-detection AUROC/AUPRC (the per-sample arrays are dropped).

Used by :mod:`lilaw_edu.experiments.runner` when it writes a record; it lives apart from
:mod:`lilaw_edu.experiments.analysis` (which only reads records) so that neither imports the other.
"""
from __future__ import annotations

import torch

from lilaw_edu.metrics import mislabel_detection

__all__ = ["W_ORIENTATION", "summarise_fit", "mislabel_summary"]

# Which way each LiLAW weight points (documented choice, used for every AUROC/AUPRC):
# W_alpha is high for confidently correct samples -> "clean"; W_beta, W_delta and their
# sum W are high for samples whose label gets little probability -> "noisy".
W_ORIENTATION = {"w_alpha": "clean", "w_beta": "noisy", "w_delta": "noisy", "w": "noisy"}
_KEEP = ("metrics", "lilaw", "history", "wall_time_s", "freeze", "overrides", "init_state_sha256", "label_filter",
         "pretrained_weights", "thread_changes")


def mislabel_summary(results: dict) -> dict:
    """Mislabel-detection AUROC/AUPRC of every recorded per-sample weight and score.

    Parameters
    ----------
    results : dict
        :func:`lilaw_edu.training.fit.fit` output with ``noise["train_label_changed"]`` (N,) 0/1 and,
        per method, ``weights`` ({epoch: {w_alpha, w_beta, w_delta, w}}) and/or ``scores``
        ({epoch: {aum, el2n, ...}}) lists of length N.

    Returns
    -------
    dict
        ``{method: {epoch: {score: {auroc, auprc, auprc_paper, frac_mislabeled, higher_means}}}}``.
        "Mislabeled" means the label actually changed (a uniform draw can pick the old label).
        Empty when nothing was recorded.
    """
    from lilaw_edu.scores.recorders import DIFFICULTY_SCORES
    changed = results.get("noise", {}).get("train_label_changed")
    if changed is None:
        return {}
    mask = torch.as_tensor(changed).bool()
    out = {}
    for method, res in results["methods"].items():
        per_epoch = {}
        for source in ("weights", "scores"):
            for epoch, scores in (res.get(source) or {}).items():
                for name, values in scores.items():
                    direction = W_ORIENTATION.get(name) or getattr(DIFFICULTY_SCORES.get(name), "higher_means", None)
                    if direction is None:
                        continue
                    det = mislabel_detection(torch.as_tensor(values, dtype=torch.float64), mask, higher_means=direction)
                    per_epoch.setdefault(str(epoch), {})[name] = {**det, "higher_means": direction}
        if per_epoch:
            out[method] = per_epoch
    return out


def summarise_fit(results: dict) -> dict:
    """What a sweep result file keeps of a :func:`~lilaw_edu.training.fit.fit` output (JSON-ready, NaN -> None)."""
    from lilaw_edu.training.results import to_jsonable
    methods = {m: {k: r[k] for k in _KEEP if k in r} for m, r in results["methods"].items()}
    noise = {k: v for k, v in (results.get("noise") or {}).items() if not isinstance(v, (list, tuple))}
    out = {"methods": methods, "data": results.get("data"), "noise": noise,
           "init_state_sha256": results.get("init_state_sha256"), "environment": results.get("environment")}
    if results.get("pretrain"):  # the identity (SHA-256) of the pretrained backbone (training/pretrain.py)
        out["pretrain"] = results["pretrain"]
    mis = mislabel_summary(results)
    if mis:
        out["mislabel"] = mis
    return to_jsonable(out)
