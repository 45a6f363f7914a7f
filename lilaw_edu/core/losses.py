"""Per-sample classification losses used under the LiLAW weights.

LiLAW multiplies a per-sample loss ``ℓ_i`` by a weight ``W_i`` (paper eq. 6), so
every loss here returns one value per sample instead of a batch mean.

* ``"ce"``: cross-entropy, ``-log s_y`` (paper eq. 1).
* ``"focal"``: focal loss of Lin et al. (2017), ``-(1 - s_y)^γ log s_y`` (paper Table 11).
* ``"gce"``: generalized cross-entropy of Zhang & Sabuncu (2018), ``(1 - s_y^q) / q``.
* ``"sce"``: symmetric cross-entropy of Wang et al. (2019),
  ``a·CE + b·RCE`` with ``RCE = -Σ_k s_k log q_k``, ``q`` the one-hot label
  clamped to ``[1e-4, 1]``, which reduces to ``-log(1e-4)·(1 - s_y)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOSS_KINDS = ("ce", "focal", "gce", "sce")
_RCE_LOG_CLAMP = -math.log(1e-4)  # -log of the clamped zero entries of the one-hot label


def check_logits_targets(logits: Tensor, targets: Tensor, name: str = "logits", *, values: bool = True) -> None:
    """Validate a batch of scores and integer targets.

    Parameters
    ----------
    logits : Tensor, shape (N, C)
        Floating-point scores (logits or probabilities, as ``name`` says).
    targets : Tensor, shape (N,)
        Integer class indices in ``[0, C)``.
    name : str
        Name of the first argument, used in error messages.
    values : bool
        False: types, dtypes and shapes only (tensor metadata: no host synchronisation);
        True: also finite scores and targets in range.

    Raises
    ------
    TypeError
        If a tensor has the wrong type or dtype.
    ValueError
        If shapes disagree, the batch is empty, values are NaN/inf or targets are out of range.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C), got {type(logits).__name__}")
    if not isinstance(targets, Tensor):
        raise TypeError(f"targets must be a torch.Tensor of shape (N,), got {type(targets).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"targets must be an integer tensor (int64 class indices), got dtype {targets.dtype}")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C), got shape {tuple(logits.shape)}")
    if logits.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got an empty batch of shape {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes (C >= 2), got C={logits.shape[1]}")
    if targets.shape != (logits.shape[0],):
        raise ValueError(f"targets must have shape ({logits.shape[0]},) to match {name}, got {tuple(targets.shape)}")
    if not values:
        return
    if not torch.isfinite(logits).all():
        raise ValueError(f"{name} must be finite, got {int((~torch.isfinite(logits)).sum())} NaN/inf entries")
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= logits.shape[1]:
        raise ValueError(f"targets must lie in [0, {logits.shape[1] - 1}], got values in [{lo}, {hi}]")


def per_sample_loss(logits: Tensor, targets: Tensor, kind: str = "ce", *, gamma: float = 2.0,
                    q: float = 0.7, sce_alpha: float = 0.1, sce_beta: float = 1.0,
                    check: bool = True) -> Tensor:
    """Loss of every sample, unreduced.

    Parameters
    ----------
    logits : Tensor, shape (N, C)
        Network outputs before the softmax.
    targets : Tensor, shape (N,)
        Observed (possibly noisy) labels, int64.
    kind : {"ce", "focal", "gce", "sce"}
        Which loss (see the module docstring).
    gamma : float
        Focusing parameter of the focal loss (``gamma = 0`` gives cross-entropy).
    q : float
        Exponent of generalized cross-entropy, in ``(0, 1]``.
    sce_alpha, sce_beta : float
        Weights of the CE and reverse-CE terms of symmetric cross-entropy.
    check : bool
        Validate the inputs (costs a host sync on a GPU; the training loop turns it off).

    Returns
    -------
    Tensor, shape (N,)
        Non-negative per-sample losses.
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
    if check:
        check_logits_targets(logits, targets)
    log_p = F.log_softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    if kind == "ce":
        return -log_p
    p_y = log_p.exp()
    if kind == "focal":
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0 for the focal loss, got {gamma}")
        return -((1.0 - p_y).clamp(min=0.0) ** gamma) * log_p
    if kind == "gce":
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1] for generalized cross-entropy, got {q}")
        return (1.0 - p_y ** q) / q
    return sce_alpha * (-log_p) + sce_beta * _RCE_LOG_CLAMP * (1.0 - p_y)
