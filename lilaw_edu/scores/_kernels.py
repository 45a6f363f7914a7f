"""Private helpers of :mod:`lilaw_edu.scores`: input checks and per-epoch kernels on (..., N, C)."""

from __future__ import annotations

import torch

from lilaw_edu._internal.checks import check_class_indices, check_prob_rows


# --------------------------------------------------------------------------- validation
def _check_stack(x, name: str, targets) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (E, N, C), got {type(x).__name__}")
    if x.dim() != 3 or 0 in x.shape or x.shape[2] < 2:
        raise ValueError(f"{name} must have shape (E, N, C) with E, N >= 1 and C >= 2, got {tuple(x.shape)}")
    if not torch.is_floating_point(x) or not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite floating-point values, got dtype {x.dtype} or NaN/inf")
    y = _check_targets(targets, x.shape[1], x.shape[2])
    return x.detach().double(), y.to(x.device)


def _check_probs_stack(probs, targets, name: str = "probs") -> tuple[torch.Tensor, torch.Tensor]:
    p, y = _check_stack(probs, name, targets)
    check_prob_rows(name, p)
    return p, y


def _check_targets(targets, n: int, num_classes: int) -> torch.Tensor:
    return check_class_indices("targets", targets, num_classes, length=n)


# --------------------------------------------------------------------------- per-epoch kernels
def _assigned(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x[..., i, y_i] for x of shape (..., N, C)."""
    return x.gather(-1, y.expand(x.shape[:-1]).unsqueeze(-1)).squeeze(-1)


def _margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Assigned logit minus the largest other logit, shape (..., N)."""
    onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).bool()
    others = logits.masked_fill(onehot, float("-inf"))
    return _assigned(logits, y) - others.max(dim=-1).values


def _error_norm(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||p - onehot(y)||_2, shape (..., N)."""
    onehot = torch.nn.functional.one_hot(y, probs.shape[-1]).to(probs.dtype)
    return (probs - onehot).norm(dim=-1)


def _bias_feature_norm(features: torch.Tensor) -> torch.Tensor:
    """sqrt(||h||^2 + 1): norm of the last layer's input with the bias's constant 1."""
    return (features.double().pow(2).sum(-1) + 1.0).sqrt()


def _correct(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return probs.argmax(dim=-1) == y


def _data_iq_groups(conf, alea, conf_low, conf_high, alea_thr) -> torch.Tensor:
    if not 0 <= conf_low < conf_high <= 1:
        raise ValueError(f"conf_low, conf_high must satisfy 0 <= conf_low < conf_high <= 1, got {conf_low}, {conf_high}")
    if not 0 < alea_thr:
        raise ValueError(f"aleatoric_threshold must be > 0, got {alea_thr}")
    groups = torch.ones_like(conf, dtype=torch.long)  # ambiguous
    groups[(conf >= conf_high) & (alea < alea_thr)] = 0
    groups[(conf <= conf_low) & (alea < alea_thr)] = 2
    return groups
