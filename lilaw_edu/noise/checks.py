"""Input validation for :mod:`lilaw_edu.noise.inject` (messages name parameter, value, allowed range)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import torch
from torch import Tensor


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def _check_rate(rate) -> None:
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise TypeError(f"rate must be a real number in [0, 1], got {rate!r}")
    if math.isnan(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")


def _check_kind(kind, allowed: Sequence[str]) -> None:
    if kind not in allowed:
        raise ValueError(f"kind must be one of {tuple(allowed)}, got {kind!r}")


def _check_num_classes(num_classes) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, Integral):
        raise TypeError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")


def _check_labels(labels, num_classes: int) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels must have an integer dtype (e.g. torch.int64), got {labels.dtype}")
    if labels.ndim != 1 or labels.numel() == 0:
        raise ValueError(f"labels must have shape (N,) with N >= 1, got shape {tuple(labels.shape)}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels must be in [0, num_classes={num_classes}), got values in [{low}, {high}]")


def _check_inputs(inputs) -> None:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.dtype.is_floating_point:
        raise TypeError(f"inputs must have a floating dtype, got {inputs.dtype}")
    is_series = inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[1] == 1)
    if not (is_series or inputs.ndim == 4) or inputs.shape[0] == 0:
        raise ValueError(
            "inputs must have shape (N, C, H, W), (N, T) or (N, 1, T) with N >= 1, "
            f"got shape {tuple(inputs.shape)}"
        )
    if torch.isnan(inputs).any():
        raise ValueError("inputs must not contain NaN, got NaN values")


def _check_unit_range(name: str, images: Tensor) -> None:
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must be in [0, 1] (pixels before normalisation), got values in [{low:.4g}, {high:.4g}]"
        )


def _select(num_samples: int, rate: float, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Exactly round(rate * N) indices without replacement, and the matching mask."""
    num_selected = int(round(rate * num_samples))
    index = torch.randperm(num_samples, generator=generator, device=generator.device)[:num_selected]
    index = index.to(device)
    mask = torch.zeros(num_samples, dtype=torch.bool, device=device)
    mask[index] = True
    return index, mask



def _check_pool(far_ood_pool) -> None:
    if far_ood_pool is None:
        raise ValueError("far_ood_pool must be images (M, C, H, W) in [0, 1] for kind='far_ood', got None")
    if not isinstance(far_ood_pool, Tensor) or not far_ood_pool.dtype.is_floating_point:
        raise TypeError(f"far_ood_pool must be a float tensor, got {type(far_ood_pool).__name__}")
    if far_ood_pool.ndim != 4 or far_ood_pool.shape[0] == 0 or torch.isnan(far_ood_pool).any():
        shape = tuple(far_ood_pool.shape)
        raise ValueError(f"far_ood_pool must have shape (M, C, H, W), M >= 1, no NaN; got {shape}")
    _check_unit_range("far_ood_pool", far_ood_pool)

