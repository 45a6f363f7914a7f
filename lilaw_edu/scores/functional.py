"""Functional forms of the difficulty scores on stacked per-epoch outputs, shape (E, N, C)."""

from __future__ import annotations

import torch

from ._kernels import (
    _assigned,
    _bias_feature_norm,
    _check_probs_stack,
    _check_stack,
    _correct,
    _data_iq_groups,
    _error_norm,
    _margin,
)

DATA_IQ_GROUPS = ("easy", "ambiguous", "hard")


# --------------------------------------------------------------------------- functional forms
def aum(logits, targets) -> torch.Tensor:
    """Area Under the Margin (Pleiss et al., 2020, "Identifying mislabeled data using the
    area under the margin ranking").

    Margin at epoch e: ``z_e[y] - max_{j != y} z_e[j]`` on the logits; AUM is its mean
    over epochs. **Low (negative) AUM -> likely mislabeled** (``higher_means="clean"``).

    Parameters
    ----------
    logits : Tensor, shape (E, N, C)
        Logits of N training samples at E epochs.
    targets : Tensor, shape (N,), int64
        Assigned (possibly noisy) labels.

    Returns
    -------
    Tensor, shape (N,), float64
    """
    z, y = _check_stack(logits, "logits", targets)
    return _margin(z, y).mean(dim=0)


def el2n(probs, targets) -> torch.Tensor:
    """Error L2-Norm (Paul et al., 2021, "Deep learning on a data diet").

    ``||softmax(z) - onehot(y)||_2``, averaged over the E stacked outputs. Paul et al.
    score one early epoch averaged over independent runs: stack those runs' outputs
    along E. **High EL2N -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
        Softmax probabilities.
    targets : Tensor, shape (N,), int64

    Returns
    -------
    Tensor, shape (N,), float64, in [0, sqrt(2)]
    """
    p, y = _check_probs_stack(probs, targets)
    return _error_norm(p, y).mean(dim=0)


def grand(probs, targets, features=None) -> torch.Tensor:
    """Gradient Normed score (Paul et al., 2021), last-layer closed form.

    GraNd is E||grad_theta loss(x, y)||. We use the common last-layer approximation:
    for a linear head z = W h + b with cross-entropy, dL/dz = p - e_y, dL/dW = (p - e_y) h^T
    and dL/db = p - e_y, so the norm is ``||p - e_y|| * sqrt(||h||^2 + 1)``. Without
    ``features`` it falls back to the gradient with respect to the logits, ``||p - e_y||``,
    which equals EL2N. Averaged over the E stacked outputs.
    **High GraNd -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64
    features : Tensor, shape (E, N, D), optional
        Input of the last linear layer (penultimate activations) at each epoch.

    Returns
    -------
    Tensor, shape (N,), float64
    """
    p, y = _check_probs_stack(probs, targets)
    norm = _error_norm(p, y)
    if features is not None:
        if not isinstance(features, torch.Tensor) or features.dim() != 3 or features.shape[:2] != p.shape[:2]:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"features must be a Tensor of shape ({p.shape[0]}, {p.shape[1]}, D), got {shape}")
        norm = norm * _bias_feature_norm(features)
    return norm.mean(dim=0)


def forgetting(probs, targets) -> torch.Tensor:
    """Forgetting events (Toneva et al., 2019, "An empirical study of example forgetting").

    A forgetting event is a transition from correctly to incorrectly classified between
    consecutive epochs (argmax vs assigned label). Toneva et al. rank samples that are
    never learned as forgotten infinitely often; we give them E (the number of epochs),
    which exceeds any reachable count (at most floor(E/2)) and keeps scores finite.
    **High count -> likely mislabeled** (``higher_means="noisy"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
        Probabilities (or logits: only the argmax is used).
    targets : Tensor, shape (N,), int64

    Returns
    -------
    Tensor, shape (N,), float64
    """
    p, y = _check_stack(probs, "probs", targets)
    correct = _correct(p, y)
    events = (correct[:-1] & ~correct[1:]).sum(dim=0).double()
    never = ~correct.any(dim=0)
    return torch.where(never, torch.full_like(events, p.shape[0]), events)


def datamaps(probs, targets) -> dict:
    """Data Maps (Swayamdipta et al., 2020, "Dataset cartography").

    confidence = mean over epochs of p_y; variability = population std (ddof = 0, as in
    the authors' code) over epochs of p_y; correctness = fraction of epochs classified
    correctly. The detection score is confidence: **low -> hard / likely mislabeled**
    (``higher_means="clean"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64

    Returns
    -------
    dict of Tensor, each shape (N,), float64
        ``confidence``, ``variability``, ``correctness``.
    """
    p, y = _check_probs_stack(probs, targets)
    p_y = _assigned(p, y)
    return {
        "confidence": p_y.mean(dim=0),
        "variability": p_y.std(dim=0, unbiased=False),
        "correctness": _correct(p, y).double().mean(dim=0),
    }


def data_iq(probs, targets, *, conf_low: float = 0.25, conf_high: float = 0.75,
            aleatoric_threshold: float = 0.2) -> dict:
    """Data-IQ (Seedat et al., 2022, "Data-IQ: Characterizing subgroups with
    heterogeneous outcomes in tabular data").

    confidence = mean over epochs of p_y; aleatoric = mean over epochs of p_y (1 - p_y);
    epistemic = population variance over epochs of p_y. Groups: **easy** if
    confidence >= conf_high and aleatoric < aleatoric_threshold, **hard** if
    confidence <= conf_low and aleatoric < aleatoric_threshold, else **ambiguous**.
    (Some implementations use a percentile of the aleatoric scores instead of a fixed
    threshold; p(1 - p) <= 0.25 always.) The detection score is confidence:
    **low -> likely mislabeled** (``higher_means="clean"``).

    Parameters
    ----------
    probs : Tensor, shape (E, N, C)
    targets : Tensor, shape (N,), int64
    conf_low, conf_high : float
        Confidence thresholds, ``0 <= conf_low < conf_high <= 1``.
    aleatoric_threshold : float
        Upper bound (strict) on aleatoric uncertainty for "easy" and "hard".

    Returns
    -------
    dict
        ``confidence``, ``aleatoric``, ``epistemic``: Tensor (N,) float64; ``groups``:
        Tensor (N,) int64 indexing ``DATA_IQ_GROUPS`` = ("easy", "ambiguous", "hard").
    """
    p, y = _check_probs_stack(probs, targets)
    p_y = _assigned(p, y)
    conf, alea = p_y.mean(dim=0), (p_y * (1 - p_y)).mean(dim=0)
    return {"confidence": conf, "aleatoric": alea, "epistemic": p_y.var(dim=0, unbiased=False),
            "groups": _data_iq_groups(conf, alea, conf_low, conf_high, aleatoric_threshold)}
