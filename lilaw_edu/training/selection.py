"""How a checkpoint-selection rule scores one epoch (issue 16): written once, used by the training loop
(:func:`lilaw_edu.training.loop.select_checkpoint`) and by the replay of rules from recorded histories
(:func:`lilaw_edu.experiments.sensitivity.rule_epoch`). Imports nothing heavy, so reading results may use it.
"""
from __future__ import annotations

import math

__all__ = ["epoch_score"]


def epoch_score(entry: dict, select_by: str, select_on: str = "val") -> float:
    """The score ``select_by`` gives one epoch's history entry; higher is better, NaN scores ``-inf``.

    Parameters
    ----------
    entry : dict
        A history entry (``val_loss``, ``val_acc`` and their ``_clean`` versions).
    select_by : {"val_loss", "val_acc", "last"}
        ``-val_loss``, ``val_acc``, or 0 for every epoch (so ties to the later epoch keep the last).
    select_on : {"val", "clean_val"}
        Score the noisy validation labels or their clean versions (the ``_clean`` entries).
    """
    if select_by == "last":
        return 0.0
    suffix = "_clean" if select_on == "clean_val" else ""
    score = -entry["val_loss" + suffix] if select_by == "val_loss" else entry["val_acc" + suffix]
    return score if score == score else -math.inf
