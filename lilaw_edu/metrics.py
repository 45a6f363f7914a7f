"""Evaluation metrics: accuracy, AUROC, calibration, mislabel detection, paired comparisons.

Everything that ranks (AUROC, AUPRC) is delegated to scikit-learn; nothing here
re-implements a ranking metric by hand.

Public API
----------
topk_accuracy(logits_or_probs, targets, k=1) -> float
evaluate_predictions(probs, targets, num_classes) -> dict
expected_calibration_error(probs, targets, num_bins=15) -> float
fit_temperature(val_logits, val_targets, *, max_iter=100) -> float
apply_temperature(logits, temperature) -> Tensor
mislabel_detection(scores, corrupted_mask, higher_means="noisy") -> dict
paired_difference(a, b, confidence=0.95) -> dict
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from lilaw_edu._internal.checks import check_class_indices, check_prob_rows

__all__ = [
    "topk_accuracy",
    "evaluate_predictions",
    "expected_calibration_error",
    "fit_temperature",
    "apply_temperature",
    "mislabel_detection",
    "paired_difference",
]


# --------------------------------------------------------------------------- validation
def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, (np.ndarray, list, tuple)):
        return torch.as_tensor(np.asarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _check_scores_2d(x, name: str) -> torch.Tensor:
    t = _as_tensor(x, name)
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got {tuple(t.shape)}")
    if not torch.is_floating_point(t):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return t.double()


def _check_targets(targets, n: int, num_classes: int, name: str = "targets") -> torch.Tensor:
    return check_class_indices(name, _as_tensor(targets, name), num_classes, length=n)


def _check_probs(probs, name: str = "probs") -> torch.Tensor:
    p = _check_scores_2d(probs, name)
    check_prob_rows(name, p)
    return p


# --------------------------------------------------------------------------- accuracy
@torch.no_grad()
def topk_accuracy(logits_or_probs, targets, k: int = 1) -> float:
    """Fraction of samples whose target is among the ``k`` highest scores.

    Parameters
    ----------
    logits_or_probs : Tensor, shape (N, C)
        Logits or probabilities (any monotone score works: only the ranking matters).
    targets : Tensor, shape (N,), int64
        Class indices in ``[0, C)``.
    k : int, default 1
        Number of top classes counted as a hit; ``1 <= k <= C``.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``. Ties are broken by ``torch.topk``'s order.
    """
    scores = _check_scores_2d(logits_or_probs, "logits_or_probs")
    n, c = scores.shape
    y = _check_targets(targets, n, c)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= c:
        raise ValueError(f"k must be an integer in [1, {c}] (C = {c}), got {k!r}")
    top = scores.topk(k, dim=1).indices
    return float((top == y[:, None]).any(dim=1).double().mean())


# --------------------------------------------------------------------------- calibration
@torch.no_grad()
def expected_calibration_error(probs, targets, num_bins: int = 15) -> float:
    """Expected calibration error with equal-width confidence bins (Guo et al., 2017).

    ECE = sum_b (|B_b| / N) * |acc(B_b) - conf(B_b)|, where confidence is the top
    probability, bins are ``((b-1)/M, b/M]`` and empty bins contribute nothing.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities (rows sum to 1).
    targets : Tensor, shape (N,), int64
    num_bins : int, default 15

    Returns
    -------
    float
        ECE in ``[0, 1]``.
    """
    p = _check_probs(probs)
    y = _check_targets(targets, p.shape[0], p.shape[1])
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    conf, pred = p.max(dim=1)
    correct = (pred == y).double()
    # bin b holds conf in ((b-1)/M, b/M]; conf is > 0 for any probability vector
    bins = torch.clamp(torch.ceil(conf * num_bins).long() - 1, 0, num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        in_bin = bins == b
        if in_bin.any():
            gap = (correct[in_bin].mean() - conf[in_bin].mean()).abs()
            ece += float(in_bin.double().mean() * gap)
    return ece


def fit_temperature(val_logits, val_targets, *, max_iter: int = 100) -> float:
    """Fit a temperature T > 0 by minimising validation NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al., 2017), used by the paper for Table 8. T is
    parameterised as ``exp(log_t)`` so it stays positive, and ``log_t`` is fitted
    with L-BFGS (strong Wolfe line search) from ``log_t = 0`` (T = 1).

    Parameters
    ----------
    val_logits : Tensor, shape (N, C)
        Validation logits (not probabilities).
    val_targets : Tensor, shape (N,), int64
    max_iter : int, default 100
        Maximum L-BFGS iterations.

    Returns
    -------
    float
        The fitted temperature. Divide test logits by it with :func:`apply_temperature`.
    """
    logits = _check_scores_2d(val_logits, "val_logits")
    y = _check_targets(val_targets, logits.shape[0], logits.shape[1], "val_targets")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    with torch.enable_grad():
        log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(logits / log_t.exp(), y)
            loss.backward()
            return loss

        opt.step(closure)
    temperature = float(log_t.detach().exp())
    if not math.isfinite(temperature) or temperature <= 0:
        raise RuntimeError(f"temperature fit diverged (T = {temperature}); check val_logits")
    return temperature


def apply_temperature(logits, temperature: float) -> torch.Tensor:
    """Divide logits by a temperature.

    Parameters
    ----------
    logits : Tensor, shape (N, C)
    temperature : float
        Positive, finite temperature (from :func:`fit_temperature`).

    Returns
    -------
    Tensor, shape (N, C)
        ``logits / temperature`` (same dtype and device as ``logits``); apply
        ``softmax`` for calibrated probabilities. Argmax, hence accuracy, is unchanged.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return logits / t


# --------------------------------------------------------------------------- AUROC and summary
def _auroc_present_classes(y: np.ndarray, p: np.ndarray, num_classes: int) -> tuple[float, float, list[int]]:
    """One-vs-rest AUROC (macro, weighted) over the classes present in ``y``."""
    present = np.unique(y)
    if present.size < 2:
        return float("nan"), float("nan"), present.tolist()
    if num_classes == 2:
        auc = float(roc_auc_score(y, p[:, 1]))
        return auc, auc, present.tolist()
    # multilabel-indicator form: one binary column per present class, scored by that
    # class's probability. Equals sklearn's multi_class="ovr" when every class is present,
    # and does not need the kept columns to sum to 1.
    indicator = (y[:, None] == present[None, :]).astype(int)
    scores = p[:, present]
    macro = float(roc_auc_score(indicator, scores, average="macro"))
    weighted = float(roc_auc_score(indicator, scores, average="weighted"))
    return macro, weighted, present.tolist()


@torch.no_grad()
def evaluate_predictions(probs, targets, num_classes: int) -> dict:
    """Top-1/top-5 accuracy, AUROC, NLL and ECE of predicted probabilities.

    Parameters
    ----------
    probs : Tensor, shape (N, C)
        Softmax probabilities, ``C == num_classes``, rows summing to 1.
    targets : Tensor, shape (N,), int64
        True (clean) labels.
    num_classes : int
        C, at least 2.

    Returns
    -------
    dict
        ``top1`` (float in [0, 1]); ``top5`` (float, or ``None`` when C <= 5 since top-5
        is then trivially 1); ``auroc``: binary AUROC of ``probs[:, 1]`` when C == 2, else
        one-vs-rest **macro** AUROC; ``auroc_weighted``: one-vs-rest AUROC weighted by
        class prevalence (equal to ``auroc`` when C == 2); ``auroc_classes``: the class
        indices the AUROC averages over; ``nll``: mean negative log-likelihood (nats);
        ``ece``: 15-bin expected calibration error.

    Notes
    -----
    A class absent from ``targets`` has no positives, so its one-vs-rest AUROC is
    undefined. Such classes are dropped and the average runs over the present ones
    (listed in ``auroc_classes``); their probability columns are still used as they
    are (not renormalised). With fewer than two present classes both AUROCs are NaN.
    Macro and weighted averages can differ a lot with rare classes (e.g. ECG5000's
    test set), so report which one is used.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    p = _check_probs(probs)
    if p.shape[1] != num_classes:
        raise ValueError(f"probs must have num_classes = {num_classes} columns, got shape {tuple(p.shape)}")
    y = _check_targets(targets, p.shape[0], num_classes)
    auroc, auroc_w, classes = _auroc_present_classes(y.numpy(), p.numpy(), num_classes)
    nll = float(-torch.log(p.gather(1, y[:, None]).squeeze(1).clamp_min(1e-12)).mean())
    return {
        "top1": topk_accuracy(p, y, k=1),
        "top5": topk_accuracy(p, y, k=5) if num_classes > 5 else None,
        "auroc": auroc,
        "auroc_weighted": auroc_w,
        "auroc_classes": classes,
        "nll": nll,
        "ece": expected_calibration_error(p, y, num_bins=15),
    }


# --------------------------------------------------------------------------- mislabel detection
def mislabel_detection(scores, corrupted_mask, higher_means: str = "noisy") -> dict:
    """How well a per-sample score separates mislabeled from correctly labeled samples.

    Parameters
    ----------
    scores : Tensor, shape (N,)
        Any per-sample score (a LiLAW weight, AUM, EL2N, ...).
    corrupted_mask : Tensor, shape (N,), bool
        True where the label was corrupted (from ``inject_label_noise``). Note that a
        uniform "corruption" may redraw the same label; pass ``noisy != clean`` if only
        actually changed labels should count.
    higher_means : {"noisy", "clean"}, default "noisy"
        Direction of the score: "noisy" if a high score means likely mislabeled (EL2N,
        GraNd, Forgetting), "clean" if a high score means likely correct (AUM, DataMaps
        and Data-IQ confidence, LiLAW's W_alpha). Recorders in ``lilaw_edu.scores``
        expose it as ``higher_means``.

    Returns
    -------
    dict
        ``auroc``: ROC AUC, identical under both labelling conventions once the score is
        oriented; ``auprc``: average precision with the **mislabeled** samples as the
        positive class (random baseline = fraction mislabeled); ``auprc_paper``:
        average precision in the paper's convention (Table 16 flags 0 = mislabeled,
        1 = correct, so the **correct** samples are the positive class; random baseline
        = fraction correct); ``frac_mislabeled``: prevalence of the mislabeled class.
        All three metrics are NaN when the mask is all True or all False.

    Notes
    -----
    AUROC does not depend on which class is called positive, but AUPRC does, and at
    50 % noise the two AUPRCs can differ substantially. The paper does not say which
    way it oriented each score, so compare with its Table 16 using ``auprc_paper``.
    """
    s = _as_tensor(scores, "scores")
    m = _as_tensor(corrupted_mask, "corrupted_mask")
    if s.dim() != 1 or s.shape[0] == 0:
        raise ValueError(f"scores must have shape (N,) with N >= 1, got {tuple(s.shape)}")
    if s.dtype == torch.bool:
        raise TypeError(f"scores must be numeric, got dtype {s.dtype}")
    if not torch.isfinite(s.double()).all():
        raise ValueError("scores must be finite, got NaN or inf values")
    if m.dtype != torch.bool:
        raise TypeError(f"corrupted_mask must be a bool tensor, got dtype {m.dtype}")
    if m.shape != s.shape:
        raise ValueError(f"corrupted_mask must have the shape of scores {tuple(s.shape)}, got {tuple(m.shape)}")
    if higher_means not in ("noisy", "clean"):
        raise ValueError(f"higher_means must be 'noisy' or 'clean', got {higher_means!r}")
    noisy = m.numpy().astype(int)
    noisiness = s.double().numpy() * (1.0 if higher_means == "noisy" else -1.0)
    frac = float(noisy.mean())
    if noisy.min() == noisy.max():
        nan = float("nan")
        return {"auroc": nan, "auprc": nan, "auprc_paper": nan, "frac_mislabeled": frac}
    return {
        "auroc": float(roc_auc_score(noisy, noisiness)),
        "auprc": float(average_precision_score(noisy, noisiness)),
        "auprc_paper": float(average_precision_score(1 - noisy, -noisiness)),
        "frac_mislabeled": frac,
    }


# --------------------------------------------------------------------------- paired comparison
def _as_1d_float(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a 1-D sequence of numbers, got {type(x).__name__}") from err
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean paired difference ``a - b`` with a t confidence interval and a paired t-test.

    Use it for per-seed results of two methods run on the same seeds (same split,
    noise and initial weights), e.g. ``a`` = LiLAW accuracies, ``b`` = baseline.

    Parameters
    ----------
    a, b : sequence of float, shape (n,)
        Paired measurements; ``a[i]`` and ``b[i]`` come from the same seed.
    confidence : float, default 0.95
        Two-sided confidence level in (0, 1).

    Returns
    -------
    dict
        ``mean`` (mean of d = a - b), ``std`` (sample std of d, ddof = 1),
        ``ci_low``/``ci_high`` (``mean -/+ t_{(1+confidence)/2, n-1} * std / sqrt(n)``),
        ``n``, ``p_value`` (two-sided, ``scipy.stats.ttest_rel``).

    Notes
    -----
    With n = 1 the spread is unknown: ``std``, the CI bounds and ``p_value`` are NaN.
    With n >= 2 and all differences equal, the CI collapses to the mean and the p-value
    is whatever scipy returns for zero variance (NaN when the mean is 0, else 0.0).
    """
    x, y = _as_1d_float(a, "a"), _as_1d_float(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    if x.size == 0:
        raise ValueError("a and b must hold at least one pair, got 0")
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    d = x - y
    n = int(d.size)
    mean = float(d.mean())
    nan = float("nan")
    if n < 2:
        return {"mean": mean, "std": nan, "ci_low": nan, "ci_high": nan, "n": n, "p_value": nan}
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero-variance differences
        p_value = float(stats.ttest_rel(x, y).pvalue)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n, "p_value": p_value}
