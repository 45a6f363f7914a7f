"""The difficulty region of ``(s_y, max s)`` pairs and LiLAW's values over it.

This is the numeric core shared by both explorer front ends
(:mod:`lilaw_edu.explain.explorer` and :mod:`lilaw_edu.explain.static`); every weight
is computed by :mod:`lilaw_edu.core.weighting`.

The difficulty region (paper §3, Fig. 2)
----------------------------------------
Let ``s`` be a softmax vector over ``C ≥ 2`` classes, ``s_y`` the label's
probability and ``m = max_j s_j``. Always ``0 ≤ s_y ≤ m ≤ 1`` (paper i–iii).

* Label attains the maximum (``s_y = m``): the other ``C − 1`` entries sum to
  ``1 − m`` and each lies in ``[0, m]``, so ``0 ≤ 1 − m ≤ (C − 1)·m``, i.e.
  ``1/C ≤ m ≤ 1``: the diagonal segment from ``(1/C, 1/C)`` to ``(1, 1)``.
* Another class ``k`` attains it (``s_y < m = s_k``): the remaining ``C − 2``
  entries sum to ``1 − s_y − m`` and each lies in ``[0, m]``, so
  ``s_y + m ≤ 1`` (paper iv) and ``s_y + (C − 1)·m ≥ 1`` (a lower edge the paper
  leaves out; it tends to ``m ≥ 0`` as ``C → ∞``, giving the paper's triangle).

Both conditions are also sufficient (:func:`realize_probs` builds a softmax
vector for every such pair). For ``C ≥ 3`` the region is the quadrilateral with
corners ``(0, 1/(C−1))``, ``(0, 1)``, ``(1/2, 1/2)``, ``(1/C, 1/C)`` plus the
diagonal segment up to ``(1, 1)``; for ``C = 2`` it is the segment
``s_y + m = 1`` (``m ≥ 1/2``) plus that diagonal.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from lilaw_edu._internal.checks import check_int, check_num_classes
from lilaw_edu.core.losses import per_sample_loss
from lilaw_edu.core.weighting import lilaw_weights, weight_components

# Heat-map panels shown by both explorers, in display order.
PANELS = ("w_alpha", "w_beta", "w_delta", "w", "wce")
# Fixed colour ranges; None means "the panel's largest finite value".
# ("ce" is not drawn by default; the region chapter's widget shows it alone.)
# W = W_α + W_β + W_δ < 3 (each term is below 1), so its panel has the fixed range [0, 3].
PANEL_RANGES = {"w_alpha": (0.0, 1.0), "w_beta": (0.0, 1.0), "w_delta": (0.0, 1.0), "w": (0.0, 3.0), "wce": (0.0, None),
                "ce": (0.0, None)}
# Slider ranges (lo, hi, step) shared by the ipywidgets and the static explorer.
SLIDERS = {"alpha": (0.0, 20.0, 0.1), "beta": (0.0, 10.0, 0.1), "delta": (0.0, 15.0, 0.1), "C": (2, 100, 1)}
VALUE_KEYS = ("w_alpha", "w_beta", "w_delta", "w", "ce", "wce")


RESOLUTION_RANGE = (3, 1001)  # grid nodes per axis accepted by the explorers


def check_resolution(resolution: int) -> int:
    """Grid resolution: an integer in :data:`RESOLUTION_RANGE`; returns it as ``int``."""
    return check_int("resolution", resolution, low=RESOLUTION_RANGE[0], high=RESOLUTION_RANGE[1])


def feasible_mask(s_y, s_max, num_classes: int, atol: float = 1e-9) -> np.ndarray:
    """Which ``(s_y, max s)`` pairs some softmax vector over ``C`` classes attains.

    Parameters
    ----------
    s_y, s_max : array_like, broadcastable
        The label's probability and the largest probability.
    num_classes : int
        ``C ≥ 2``.
    atol : float
        Slack allowed on every constraint (for points computed in floating point).

    Returns
    -------
    ndarray of bool, the broadcast shape
        True where ``0 ≤ s_y``, ``m ≤ 1`` and either ``s_y = m ≥ 1/C`` (label is the
        arg-max) or ``s_y ≤ m``, ``s_y + m ≤ 1``, ``s_y + (C−1)·m ≥ 1`` (it is not);
        see the module docstring for the derivation.
    """
    c = check_num_classes(num_classes)
    s, m = np.broadcast_arrays(np.asarray(s_y, dtype=float), np.asarray(s_max, dtype=float))
    in_box = (s >= -atol) & (m <= 1 + atol)
    on_diagonal = (np.abs(s - m) <= atol) & (c * m >= 1 - atol)
    off_diagonal = (s <= m + atol) & (s + m <= 1 + atol) & (s + (c - 1) * m >= 1 - atol)
    return in_box & (on_diagonal | off_diagonal)


def realize_probs(s_y, s_max, num_classes: int, dtype: torch.dtype = torch.float64):
    """Softmax vectors that attain given ``(s_y, max s)`` pairs.

    Class 0 is the label with probability ``s_y``; when ``s_y < m`` class 1 holds
    ``m``; the rest share what is left evenly (at most ``m`` each inside the region).

    Parameters
    ----------
    s_y, s_max : array_like, shape (K,)
        Pairs inside :func:`feasible_mask` for ``num_classes``.
    num_classes : int
        ``C ≥ 2``.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    probs : Tensor, shape (K, C)
    targets : Tensor, shape (K,), int64 (all zero)

    Raises
    ------
    ValueError
        If a pair is not attainable with ``num_classes`` classes.
    """
    c = check_num_classes(num_classes)
    s, m = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (s_y, s_max))
    if s.shape != m.shape or s.ndim != 1:
        raise ValueError(f"s_y and s_max must be 1-d of equal length, got shapes {s.shape} and {m.shape}")
    bad = ~feasible_mask(s, m, c)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(f"(s_y, s_max) must be attainable with C={c} classes, got ({s[k]}, {m[k]})")
    s, m = np.clip(s, 0.0, 1.0), np.clip(m, 0.0, 1.0)
    on_diagonal = np.abs(s - m) <= 1e-9
    second = np.where(on_diagonal, 0.0, m)
    rest_count = np.where(on_diagonal, c - 1, c - 2)
    rest = np.clip(1.0 - s - second, 0.0, None) / np.maximum(rest_count, 1)
    probs = np.repeat(rest[:, None], c, axis=1)
    probs[:, 0] = s
    probs[:, 1] = np.where(on_diagonal, rest, m)
    return torch.as_tensor(probs, dtype=dtype), torch.zeros(len(s), dtype=torch.int64)


def values_at(s_y, s_max, alpha: float, beta: float, delta: float, num_classes: int) -> dict:
    """LiLAW weights and weighted cross-entropy at attainable ``(s_y, max s)`` pairs.

    Parameters
    ----------
    s_y, s_max : array_like, shape (K,)
    alpha, beta, delta : float
    num_classes : int

    Returns
    -------
    dict of ndarray, shape (K,) each
        ``w_alpha``, ``w_beta``, ``w_delta``, ``w`` (their sum), ``ce`` (``−log s_y``,
        paper eq. 1; ``inf`` at ``s_y = 0``) and ``wce`` (``W·CE``, paper eq. 6).
    """
    return _values(*realize_probs(s_y, s_max, num_classes), alpha, beta, delta)


@torch.no_grad()
def _values(probs, targets, alpha: float, beta: float, delta: float) -> dict:
    a, b, d = float(alpha), float(beta), float(delta)
    parts = weight_components(probs, targets, a, b, d)
    w = lilaw_weights(probs, targets, a, b, d)
    ce = per_sample_loss(torch.log(probs), targets, "ce", check=False)
    out = dict(zip(("w_alpha", "w_beta", "w_delta"), (p.numpy() for p in parts)))
    out.update(w=w.numpy(), ce=ce.numpy(), wce=(w * ce).numpy())
    return out


def grid_axis(resolution: int) -> np.ndarray:
    """Grid nodes ``0, 1/(n−1), …, 1`` shared by both explorers (shape (n,))."""
    return np.linspace(0.0, 1.0, check_resolution(resolution))


@functools.lru_cache(maxsize=8)
def _grid_points(num_classes: int, resolution: int):
    axis = grid_axis(resolution)
    s, m = np.meshgrid(axis, axis)  # rows: m (max s), columns: s_y
    mask = feasible_mask(s, m, num_classes)
    return (mask, *realize_probs(s[mask], m[mask], num_classes))


def surfaces(alpha: float, beta: float, delta: float, num_classes: int = 10, resolution: int = 121) -> dict:
    """Heat-map arrays of every panel over the feasible region.

    Parameters
    ----------
    alpha, beta, delta : float
    num_classes : int
    resolution : int
        Nodes per axis, ``n``.

    Returns
    -------
    dict of ndarray, shape (n, n) each
        Keys of :func:`values_at`; row ``j`` is ``max s = j/(n−1)``, column ``i`` is
        ``s_y = i/(n−1)``; NaN outside the region (and ``inf`` for CE at ``s_y = 0``).
    """
    mask, probs, targets = _grid_points(check_num_classes(num_classes), check_resolution(resolution))
    vals = _values(probs, targets, alpha, beta, delta)
    out = {}
    for key, v in vals.items():
        grid = np.full(mask.shape, np.nan)
        grid[mask] = v
        out[key] = grid
    return out


def panel_range(key: str, grid: np.ndarray) -> tuple[float, float]:
    """Colour range of a panel: fixed, or up to its largest finite value."""
    lo, hi = PANEL_RANGES[key]
    if hi is None:
        finite = grid[np.isfinite(grid)]
        hi = float(finite.max()) if finite.size else 1.0
    return lo, max(hi, lo + 1e-12)
