"""Input checks specific to :mod:`lilaw_edu.noise.inject` (images, far-OOD pool) and the sample selection.

Generic validators (rate, kind, number of classes, labels, generator) are the shared ones
of :mod:`lilaw_edu._internal.checks`. Messages name the parameter, the value and what is allowed.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_inputs", "check_unit_range", "check_pool", "select_samples"]


def check_inputs(inputs) -> None:
    """Inputs of input noise: float tensor (N, C, H, W), (N, T) or (N, 1, T), N >= 1, no NaN."""
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


def check_unit_range(name: str, images: Tensor) -> None:
    """Pixels must be in [0, 1] (before normalisation)."""
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must be in [0, 1] (pixels before normalisation), got values in [{low:.4g}, {high:.4g}]"
        )


def check_pool(far_ood_pool) -> None:
    """The far-OOD pool: float images (M, C, H, W), M >= 1, in [0, 1], no NaN."""
    if far_ood_pool is None:
        raise ValueError("far_ood_pool must be images (M, C, H, W) in [0, 1] for kind='far_ood', got None")
    if not isinstance(far_ood_pool, Tensor) or not far_ood_pool.dtype.is_floating_point:
        raise TypeError(f"far_ood_pool must be a float tensor, got {type(far_ood_pool).__name__}")
    if far_ood_pool.ndim != 4 or far_ood_pool.shape[0] == 0 or torch.isnan(far_ood_pool).any():
        shape = tuple(far_ood_pool.shape)
        raise ValueError(f"far_ood_pool must have shape (M, C, H, W), M >= 1, no NaN; got {shape}")
    check_unit_range("far_ood_pool", far_ood_pool)


def select_samples(num_samples: int, rate: float, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
    """Exactly ``round(rate * N)`` indices without replacement, and the matching bool mask (N,)."""
    num_selected = int(round(rate * num_samples))
    index = torch.randperm(num_samples, generator=generator, device=generator.device)[:num_selected]
    index = index.to(device)
    mask = torch.zeros(num_samples, dtype=torch.bool, device=device)
    mask[index] = True
    return index, mask
