"""Input validators and the probability tolerance: the one copy used by every subpackage.

Every validator raises ``TypeError`` (wrong type or dtype) or ``ValueError`` (wrong
value or shape) with a one-line message that names the parameter, the value found and
what is allowed, e.g. ``rate must be in [0, 1], got 1.5``. Validators that normalise
their input return it (an ``int``, a ``float`` or an int64 tensor).

Used by :mod:`lilaw_edu.noise`, :mod:`lilaw_edu.datasets`, :mod:`lilaw_edu.metrics`,
:mod:`lilaw_edu.explain`, :mod:`lilaw_edu.scores` and :mod:`lilaw_edu.core`; imports
only torch (this module sits below the core in the layer contract).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import torch
from torch import Tensor

__all__ = ["PROB_SUM_ATOL", "check_choice", "check_int", "check_num_classes", "check_fraction",
           "check_generator", "check_class_indices", "check_prob_rows"]

#: Largest allowed ``|sum_j p_ij - 1|`` for a row of probabilities (float32 softmax
#: rows are within ~1e-6; 1e-3 still catches logits passed by mistake).
PROB_SUM_ATOL = 1e-3

_LOGITS_HINT = "did you pass logits? apply torch.softmax(logits, dim=1) first"


def check_choice(name: str, value, allowed: Sequence) -> None:
    """``value`` must be one of ``allowed`` (ValueError otherwise)."""
    try:
        ok = value in allowed
    except TypeError:  # unhashable value against a set/dict
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` must be an integer (not bool) in ``[low, high]``; returns it as ``int``.

    Raises
    ------
    TypeError
        Not an integer (floats such as ``2.0`` included).
    ValueError
        Outside ``[low, high]``.
    """
    if low is not None and high is not None:
        allowed = f"an integer in [{low}, {high}]"
    elif low is not None:
        allowed = f"an integer >= {low}"
    elif high is not None:
        allowed = f"an integer <= {high}"
    else:
        allowed = "an integer"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_num_classes(value, name: str = "num_classes") -> int:
    """Number of classes C: an integer >= 2."""
    return check_int(name, value, low=2)


def check_fraction(name: str, value, *, open_interval: bool = False) -> float:
    """A real number in ``[0, 1]`` (``open_interval=True``: in ``(0, 1)``); returns it as ``float``.

    Raises
    ------
    TypeError
        Not a real number (bools and strings included).
    ValueError
        NaN or outside the interval.
    """
    interval = "(0, 1)" if open_interval else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number in {interval}, got {value!r}")
    value = float(value)
    inside = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if math.isnan(value) or not inside:
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def check_generator(generator, name: str = "generator") -> None:
    """``generator`` must be a ``torch.Generator`` (TypeError otherwise)."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator, got {type(generator).__name__}")


def check_class_indices(name: str, values, num_classes: int, *, length: int | None = None,
                        allow_empty: bool = False) -> Tensor:
    """Class indices: an integer tensor of shape (N,) with values in ``[0, num_classes)``.

    Parameters
    ----------
    name : str
        Parameter name used in messages (``"labels"``, ``"targets"``, ...).
    values : Tensor, shape (N,)
    num_classes : int
    length : int, optional
        Required N (e.g. the number of rows of the matching scores).
    allow_empty : bool
        Accept N = 0 (only checked when ``length`` is None).

    Returns
    -------
    Tensor, int64, shape (N,)
    """
    if not isinstance(values, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N,), got {type(values).__name__}")
    if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype (e.g. torch.int64), got {values.dtype}")
    if length is not None and tuple(values.shape) != (length,):
        raise ValueError(f"{name} must have shape ({length},), got shape {tuple(values.shape)}")
    if values.ndim != 1 or (values.numel() == 0 and not allow_empty and length is None):
        raise ValueError(f"{name} must have shape (N,) with N >= 1, got shape {tuple(values.shape)}")
    if values.numel():
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"{name} must lie in [0, num_classes={num_classes}), got values in [{low}, {high}]")
    return values.long()


def check_prob_rows(name: str, probs: Tensor, atol: float = PROB_SUM_ATOL) -> None:
    """Rows of ``probs`` (shape (..., C), finite) must be probabilities: entries in [0, 1], sums 1 ± ``atol``.

    Shape, dtype and finiteness are the caller's checks; this one catches logits passed
    by mistake.
    """
    detached = probs.detach()
    low = float(detached.min())
    if low < 0:  # with no negative entries, an entry above 1 shows in its row sum
        raise ValueError(f"{name} must be probabilities in [0, 1], got a minimum of {low:.4g}; {_LOGITS_HINT}")
    sums = detached.sum(dim=-1)
    worst = float((sums - 1).abs().max())
    if worst > atol:
        raise ValueError(f"{name} rows must sum to 1 (tolerance {atol}), got row sums in "
                         f"[{float(sums.min()):.4g}, {float(sums.max()):.4g}]; {_LOGITS_HINT}")
