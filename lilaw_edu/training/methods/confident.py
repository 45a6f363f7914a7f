"""Confident learning (Northcutt, Jiang and Chuang, JAIR 2021) with the ``cleanlab`` package:
clean the training labels first, then train the baseline on what is left.

1. Out-of-sample predicted probabilities by K-fold cross-fitting (stratified folds; each
   fold's model starts from the run's shared initial weights and trains on the other
   K − 1 folds for ``ceil(fold_epochs × epochs)`` epochs with the baseline's loss,
   optimiser and batch size, no scheduler, no early stopping);
2. ``cleanlab.filter.find_label_issues(labels, pred_probs, filter_by=...)`` flags the
   samples whose given label is likely wrong (default ``"prune_by_noise_rate"``,
   cleanlab's default);
3. the method then trains on the unflagged samples only (the loop does this).

Defaults: K = 5 (cleanlab's ``cv_n_folds``); half of the run's epochs per fold (the
paper's experiments train each fold fully; half keeps the cost at about three times
the baseline's, and early-stopped models overfit noisy labels less). ``cleanlab`` is an
optional dependency (``pip install "lilaw-edu[peers]"``), imported only here.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

from lilaw_edu.training import engine
from lilaw_edu.training.config import CL_FILTER_BY

__all__ = ["FILTER_BY", "fold_epochs", "cross_fit_probabilities", "find_label_issues", "detection_quality",
           "network_fit_predict"]

FILTER_BY = CL_FILTER_BY  # cleanlab.filter.find_label_issues filter_by values


def fold_epochs(epochs: int, fraction: float) -> int:
    """Epochs each fold's model trains: ``max(1, ceil(fraction × epochs))``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction (cl_fold_epochs) must be in (0, 1], got {fraction!r}")
    return max(1, math.ceil(fraction * epochs))


def cross_fit_probabilities(y: Tensor, num_classes: int, fit_predict, *, folds: int = 5, seed: int = 0) -> Tensor:
    """Out-of-sample class probabilities for every sample by stratified K-fold cross-fitting.

    Parameters
    ----------
    y : Tensor, shape (N,), int64
        Given (possibly noisy) labels.
    num_classes : int
    fit_predict : callable
        ``fit_predict(train_idx, held_out_idx, fold) -> Tensor (len(held_out_idx), num_classes)``:
        trains on ``train_idx`` and returns probabilities for ``held_out_idx`` (int64 index tensors).
    folds : int
        K >= 2.
    seed : int
        Seeds the fold assignment.

    Returns
    -------
    Tensor, shape (N, num_classes), float64
        Each row predicted by the model that did not train on it.
    """
    from sklearn.model_selection import StratifiedKFold

    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(y):
        raise ValueError(f"folds must be an integer in [2, {len(y)}], got {folds!r}")
    labels = y.cpu().numpy()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % (2**32))
    probs = torch.full((len(labels), num_classes), float("nan"), dtype=torch.float64)
    with warnings.catch_warnings():  # classes rarer than K: sklearn warns, the folds are still valid
        warnings.filterwarnings("ignore", message="The least populated class")
        splits = list(splitter.split(np.zeros(len(labels)), labels))
    for fold, (train_idx, held_idx) in enumerate(splits):
        held = torch.as_tensor(held_idx)
        out = fit_predict(torch.as_tensor(train_idx), held, fold)
        probs[held] = out.detach().cpu().double()
    return probs


def find_label_issues(labels: Tensor, pred_probs: Tensor, *, filter_by: str = "prune_by_noise_rate") -> Tensor:
    """``cleanlab.filter.find_label_issues`` on torch tensors.

    Parameters
    ----------
    labels : Tensor, shape (N,), int64
    pred_probs : Tensor, shape (N, C)
        Out-of-sample probabilities (rows sum to 1).
    filter_by : str
        One of :data:`FILTER_BY`.

    Returns
    -------
    Tensor, shape (N,), bool
        True where the label is flagged as an issue.
    """
    if filter_by not in FILTER_BY:
        raise ValueError(f"filter_by must be one of {list(FILTER_BY)}, got {filter_by!r}")
    try:
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError as exc:
        raise ImportError("the 'cleanlab' method needs the cleanlab package: "
                          "pip install 'lilaw-edu[peers]' (or pip install 'cleanlab>=2.5')") from exc
    p = pred_probs.detach().cpu().double().numpy()
    p = p / p.sum(axis=1, keepdims=True)
    # n_jobs=1: cleanlab's multiprocessing path shares arrays through module globals, which only a forked
    # pool sees; in a spawned sweep worker it fails with a NameError. The flags do not depend on n_jobs.
    flagged = cleanlab_find(labels=labels.cpu().numpy(), pred_probs=p, filter_by=filter_by, n_jobs=1)
    return torch.as_tensor(np.asarray(flagged, dtype=bool))


def detection_quality(flagged: Tensor, corrupted: Tensor) -> dict:
    """How well the flags match the known corrupted samples.

    Returns
    -------
    dict
        ``flagged``, ``corrupted``, ``true_positives`` (int), ``recall`` (share of corrupted samples
        flagged), ``precision`` (share of flagged samples corrupted); None where undefined.
    """
    flagged, corrupted = flagged.bool().cpu(), corrupted.bool().cpu()
    tp, nf, nc = int((flagged & corrupted).sum()), int(flagged.sum()), int(corrupted.sum())
    return {"flagged": nf, "corrupted": nc, "true_positives": tp,
            "recall": tp / nc if nc else None, "precision": tp / nf if nf else None}


def network_fit_predict(make_model, x: Tensor, y: Tensor, config, device: torch.device, epochs: int):
    """The ``fit_predict`` of :func:`cross_fit_probabilities` for the harness's networks.

    Parameters
    ----------
    make_model : callable
        ``make_model() -> (model, optimizer)``: a fresh model with the run's initial weights on
        ``device`` and its optimiser.
    x : Tensor, shape (N, ...) ; y : Tensor, shape (N,)
        The training split (inputs and given labels).
    config : TrainConfig
        Batch size, loss, augmentation, seed (plain loss; ``weighting`` is ignored).
    device : torch.device
    epochs : int
        Epochs per fold.
    """
    def fit_predict(train_idx: Tensor, held_idx: Tensor, fold: int) -> Tensor:
        model, optimizer = make_model()
        train = engine.Batches(x[train_idx], y[train_idx], config.batch_size, device)
        held = engine.Batches(x[held_idx], y[held_idx], config.eval_batch_size, device)
        gens = {name: engine.make_generator(config.seed, f"cleanlab-fold{fold}-{name}", device)
                for name in ("shuffle", "augment", "meta")}
        for _ in range(epochs):
            engine.train_one_epoch(model, optimizer, train, lilaw=None, weighted=False, meta=False, val=None,
                                   generators=gens, config=config, device=device)
        logits = engine.predict_logits(model, held, device=device, amp=config.amp)
        return torch.softmax(logits.double(), dim=1)

    return fit_predict
