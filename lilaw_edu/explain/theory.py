"""Small pure functions behind the book's derivations (paper §3, appendix A.1–A.2).

The weights themselves live in :mod:`lilaw_edu.core.weighting`; everything here
builds on :func:`~lilaw_edu.core.weighting.weight_components` and never redefines them.

* Geometry of the difficulty region: its corner points for C classes (the
  region itself, its mask and surfaces are in :mod:`lilaw_edu.explain.explorer`),
  and the exact range of any linear argument ``c·s_y − m`` over it.
* Bounds of W_α, W_β, W_δ: the paper's (eqs. 9, 12, 13) and the exact ones.
* Table 5 of the paper recomputed from eqs. 2–6 and compared with the print.
* Closed-form meta gradients ∂L_W/∂α, ∂β, ∂δ (appendix A.2, corrected).
"""
from __future__ import annotations

import itertools
import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lilaw_edu._internal.checks import check_fraction, check_int, check_num_classes
from lilaw_edu.core.weighting import PARAM_NAMES, label_and_max_prob, parse_active, weight_components

# --------------------------------------------------------------------------- Table 5 (appendix A.1)
#: The four cases of Table 5: name and the two-class prediction; the label is class 0.
TABLE5_CASES = (
    ("correct & confident", (0.95, 0.05)),
    ("correct & unconfident", (0.60, 0.40)),
    ("incorrect & unconfident", (0.40, 0.60)),
    ("incorrect & confident", (0.05, 0.95)),
)
#: The two (alpha, beta, delta) settings of Table 5.
TABLE5_SETTINGS = ((10.0, 2.0, 6.0), (9.0, 3.0, 7.0))
#: Table 5 as printed (transcribed from the paper, three decimals). The print
#: orders the weight columns W_α, W_δ, W_β; here they are keyed by name.
TABLE5_PRINTED = {
    (10.0, 2.0, 6.0): {
        "correct & confident": dict(ce=0.051, w_alpha=0.999, w_delta=0.199, w_beta=0.500, w=1.698, loss=0.087),
        "correct & unconfident": dict(ce=0.511, w_alpha=0.998, w_delta=0.865, w_beta=0.500, w=2.363, loss=1.208),
        "incorrect & unconfident": dict(ce=0.916, w_alpha=0.982, w_delta=0.966, w_beta=0.550, w=2.498, loss=2.289),
        "incorrect & confident": dict(ce=2.996, w_alpha=0.222, w_delta=0.658, w_beta=0.812, w=1.692, loss=5.073),
    },
    (9.0, 3.0, 7.0): {
        "correct & confident": dict(ce=0.051, w_alpha=0.999, w_delta=0.000, w_beta=0.130, w=1.129, loss=0.058),
        "correct & unconfident": dict(ce=0.511, w_alpha=0.992, w_delta=0.002, w_beta=0.231, w=1.225, loss=0.626),
        "incorrect & unconfident": dict(ce=0.916, w_alpha=0.953, w_delta=0.089, w_beta=0.354, w=1.396, loss=1.279),
        "incorrect & confident": dict(ce=2.996, w_alpha=0.378, w_delta=0.835, w_beta=0.690, w=1.903, loss=5.700),
    },
}
TABLE5_QUANTITIES = ("ce", "w_alpha", "w_delta", "w_beta", "w", "loss")
#: A printed 3-decimal value agrees with the equations if it is within half a unit of the last digit.
PRINT_TOLERANCE = 0.0005 + 1e-9


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def table5_recomputed(settings=TABLE5_SETTINGS) -> list[dict]:
    """Recompute every cell of Table 5 from eqs. 1–6 (float64).

    Parameters
    ----------
    settings : sequence of (alpha, beta, delta)

    Returns
    -------
    list of dict
        One row per (setting, case) with keys ``setting``, ``case``, ``s_y``, ``m``,
        ``ce``, ``w_alpha``, ``w_beta``, ``w_delta``, ``w`` and ``loss`` (= W·CE), unrounded.
    """
    probs = torch.tensor([pred for _, pred in TABLE5_CASES], dtype=torch.float64)
    targets = torch.zeros(len(TABLE5_CASES), dtype=torch.int64)
    s_y, m = label_and_max_prob(probs, targets)
    ce = F.nll_loss(probs.log(), targets, reduction="none")
    rows = []
    for setting in settings:
        w_a, w_b, w_d = weight_components(probs, targets, *map(float, setting))
        w = w_a + w_b + w_d
        for i, (case, _) in enumerate(TABLE5_CASES):
            rows.append(dict(setting=tuple(setting), case=case, s_y=float(s_y[i]), m=float(m[i]),
                             ce=float(ce[i]), w_alpha=float(w_a[i]), w_beta=float(w_b[i]),
                             w_delta=float(w_d[i]), w=float(w[i]), loss=float(w[i] * ce[i])))
    return rows


def table5_comparison() -> list[dict]:
    """Printed Table 5 against :func:`table5_recomputed`, cell by cell.

    Returns
    -------
    list of dict
        Keys ``setting``, ``case``, ``quantity``, ``printed``, ``recomputed``,
        ``diff`` (recomputed − printed) and ``agrees`` (``|diff| ≤ 0.0005``, i.e.
        the print is the correctly rounded value).
    """
    out = []
    for row in table5_recomputed(TABLE5_SETTINGS):
        printed = TABLE5_PRINTED[row["setting"]][row["case"]]
        for q in TABLE5_QUANTITIES:
            diff = row[q] - printed[q]
            out.append(dict(setting=row["setting"], case=row["case"], quantity=q, printed=printed[q],
                            recomputed=row[q], diff=diff, agrees=abs(diff) <= PRINT_TOLERANCE))
    return out


def table5_internal_consistency() -> list[dict]:
    """Check the printed rows against themselves: W = sum of the printed parts, L_W = W·CE.

    Returns
    -------
    list of dict
        Keys ``setting``, ``case``, ``sum_gap`` (printed W − printed parts' sum) and
        ``loss_gap`` (printed L_W − printed W · true CE).
    """
    out = []
    for setting, cases in TABLE5_PRINTED.items():
        for case, pred in TABLE5_CASES:
            p = cases[case]
            parts = p["w_alpha"] + p["w_beta"] + p["w_delta"]
            out.append(dict(setting=setting, case=case, sum_gap=p["w"] - parts,
                            loss_gap=p["loss"] - p["w"] * -math.log(pred[0])))
    return out


def table5_formula_search(setting=(10.0, 2.0, 6.0), min_rows: int = 4,
                          tol: float = 0.0015) -> list[tuple[str, str, int]]:
    """Look for a simple formula that reproduces a printed Table 5 weight column.

    Tries ``f(p·u − q·v)`` for ``f`` in {σ(x), σ(−x), exp(−x²/2)}, ``u, v`` in
    {s_y, m, 1 − s_y, 1 − m, 0} (s and m swapped, signs flipped, the parameter
    dropped, ...), and ``p, q`` in {0.5, 1, 2, ..., 12} ∪ {−1}. It reports every
    (column, formula) that matches at least ``min_rows`` of the four printed
    values within ``tol``.

    Parameters
    ----------
    setting : (alpha, beta, delta)
    min_rows : int
        How many of the 4 rows must match.
    tol : float
        Absolute tolerance (a bit more than the print's rounding).

    Returns
    -------
    list of (column, formula, rows_matched)
    """
    s = np.array([p[0] for _, p in TABLE5_CASES])
    m = np.maximum(s, 1 - s)
    feats = {"s_y": s, "m": m, "1-s_y": 1 - s, "1-m": 1 - m, "0": 0 * s}
    funcs = {"sigmoid": lambda x: 1 / (1 + np.exp(-x)), "sigmoid(-)": lambda x: 1 / (1 + np.exp(x)),
             "rbf": lambda x: np.exp(-x ** 2 / 2)}
    coefs = [0.5] + list(range(1, 13))
    printed = TABLE5_PRINTED[tuple(setting)]
    hits = []
    for col in ("w_alpha", "w_beta", "w_delta"):
        target = np.array([printed[c][col] for c, _ in TABLE5_CASES])
        for (un, u), (vn, v), p, q, (fn, f) in itertools.product(
                feats.items(), feats.items(), coefs, coefs + [-1], funcs.items()):
            rows = int((np.abs(f(p * u - q * v) - target) <= tol).sum())
            if rows >= min_rows:
                hits.append((col, f"{fn}({p}*{un} - {q}*{vn})", rows))
    return sorted(set(hits))


# --------------------------------------------------------------------------- the region (§3, Fig. 2)
def region_vertices(num_classes: Optional[int] = None) -> np.ndarray:
    """Corner points of the closed (s_y, m) region for C classes.

    The region is the union of the "correct" diagonal ``s_y = m ∈ [1/C, 1]`` and
    the "incorrect" polygon ``0 ≤ s_y ≤ m``, ``s_y + m ≤ 1``, ``s_y + (C − 1)·m ≥ 1``
    (the other C − 2 classes hold the rest, each at most m).

    Parameters
    ----------
    num_classes : int or None
        C ≥ 2; None means any C (the limit C → ∞, the paper's Fig. 2).

    Returns
    -------
    ndarray, shape (5, 2)
        (s_y, m) of: (0, 1/(C−1)), (1/C, 1/C), (1/2, 1/2), (0, 1), (1, 1).
    """
    if num_classes is not None:
        check_num_classes(num_classes)
    inv_c = 0.0 if num_classes is None else 1.0 / num_classes
    inv_c1 = 0.0 if num_classes is None else 1.0 / (num_classes - 1)
    return np.array([[0.0, inv_c1], [inv_c, inv_c], [0.5, 0.5], [0.0, 1.0], [1.0, 1.0]])


def argument_range(coef: float, num_classes: Optional[int] = None) -> tuple[float, float]:
    """Exact min and max of ``coef·s_y − m`` over the closed region.

    A linear function takes its extremes at the corners, so this evaluates it at
    :func:`region_vertices`. The extremes are limits: softmax outputs are strictly
    inside (0, 1), so they are approached but not attained.

    Parameters
    ----------
    coef : float
        α, β or δ.
    num_classes : int or None

    Returns
    -------
    (lo, hi) : tuple of float
    """
    v = region_vertices(num_classes)
    vals = coef * v[:, 0] - v[:, 1]
    return float(vals.min()), float(vals.max())


def paper_bounds(alpha: float, beta: float) -> dict[str, tuple[float, float]]:
    """The bounds as printed: eq. 9 for W_α, eq. 12 for W_β, and 0 < W_δ ≤ 1 (eq. 13).

    Eq. 9 holds when α ≥ 1 and eq. 12 when β ≥ 1 (see :func:`exact_bounds`).

    Returns
    -------
    dict
        ``w_alpha``: (σ(−1), σ(α − 1)); ``w_beta``: (σ(1 − β), σ(1)); ``w_delta``: (0, 1).
    """
    return {"w_alpha": (_sigmoid(-1.0), _sigmoid(alpha - 1.0)),
            "w_beta": (_sigmoid(1.0 - beta), _sigmoid(1.0)),
            "w_delta": (0.0, 1.0)}


def exact_bounds(alpha: float, beta: float, delta: float,
                 num_classes: Optional[int] = None) -> dict[str, tuple[float, float]]:
    """Infimum and supremum of each weight over the region for C classes.

    W_α = σ(x_α) and W_β = σ(−x_β) are monotone in their arguments, so their
    extremes sit at the ends of :func:`argument_range`. W_δ = exp(−x_δ²/2) is 1
    when 0 lies in the range of x_δ and smallest at the end farthest from 0.

    Parameters
    ----------
    alpha, beta, delta : float
    num_classes : int or None

    Returns
    -------
    dict
        ``w_alpha``, ``w_beta``, ``w_delta``: (inf, sup) each.
    """
    a_lo, a_hi = argument_range(alpha, num_classes)
    b_lo, b_hi = argument_range(beta, num_classes)
    d_lo, d_hi = argument_range(delta, num_classes)
    far = max(abs(d_lo), abs(d_hi))
    near = 0.0 if d_lo <= 0.0 <= d_hi else min(abs(d_lo), abs(d_hi))
    return {"w_alpha": (_sigmoid(a_lo), _sigmoid(a_hi)),
            "w_beta": (_sigmoid(-b_hi), _sigmoid(-b_lo)),
            "w_delta": (math.exp(-far ** 2 / 2), math.exp(-near ** 2 / 2))}


def sample_probs(n: int, num_classes: int, *, generator: torch.Generator, max_scale: float = 15.0,
                 dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """Random softmax vectors spread over the whole region, with labels.

    Logits are standard normal times a per-row scale uniform in [0, max_scale]
    (scale 0: uniform prediction; large: nearly one-hot). Labels are uniform,
    except that every second row takes the predicted class, so that the
    "correct" diagonal is as well covered as the "incorrect" area.

    Parameters
    ----------
    n : int
    num_classes : int
        C ≥ 2.
    generator : torch.Generator
    max_scale : float
    dtype : torch.dtype

    Returns
    -------
    probs : Tensor, shape (n, C)
    targets : Tensor, shape (n,), int64
    """
    check_int("n", n, low=1)
    check_num_classes(num_classes)
    scale = torch.rand(n, 1, generator=generator, dtype=dtype) * max_scale
    logits = torch.randn(n, num_classes, generator=generator, dtype=dtype) * scale
    probs = torch.softmax(logits, dim=1)
    targets = torch.randint(0, num_classes, (n,), generator=generator)
    targets[::2] = probs[::2].argmax(dim=1)
    return probs, targets


# --------------------------------------------------------------------------- gradients (appendix A.2)
def meta_gradients(probs: Tensor, targets: Tensor, losses: Tensor, alpha: float, beta: float,
                   delta: float, active: str = "abd") -> dict[str, float]:
    """Closed-form ∂/∂α, ∂/∂β, ∂/∂δ of the batch-mean LiLAW loss mean_i(W_i·ℓ_i).

    With x_p = p·s_y − m and σ'(x) = σ(x)(1 − σ(x)) = σ(x)²·e^{−x}:

    * ∂W_α/∂α = W_α(1 − W_α)·s_y          (≥ 0)
    * ∂W_β/∂β = −W_β(1 − W_β)·s_y         (≤ 0)
    * ∂W_δ/∂δ = −W_δ·(δ·s_y − m)·s_y       (sign of m − δ·s_y)

    and ∂L_W/∂p = mean_i ℓ_i·∂W_p/∂p (ℓ does not depend on α, β, δ).

    Parameters
    ----------
    probs : Tensor, shape (N, C)
    targets : Tensor, shape (N,)
    losses : Tensor, shape (N,)
        Per-sample loss ℓ_i (e.g. cross-entropy).
    alpha, beta, delta : float
    active : str
        Ablation subset of "abd"; inactive parameters get gradient 0.

    Returns
    -------
    dict
        ``alpha``, ``beta``, ``delta``: float gradients.
    """
    names = parse_active(active)
    s_y, m = label_and_max_prob(probs, targets)
    w_a, w_b, w_d = weight_components(probs, targets, alpha, beta, delta)
    per_sample = {"alpha": w_a * (1 - w_a) * s_y,
                  "beta": -w_b * (1 - w_b) * s_y,
                  "delta": -w_d * (delta * s_y - m) * s_y}
    return {n: float((losses * per_sample[n]).mean()) if n in names else 0.0 for n in PARAM_NAMES}


def printed_delta_derivative(s_y: Tensor, m: Tensor, delta: float) -> Tensor:
    """The third line of the paper's ∂W_δ/∂δ derivation taken literally (appendix A.2).

    It divides by exp(−x²/2) instead of multiplying: −x·s_y / exp(−x²/2) with
    x = δ·s_y − m. The correct derivative is −x·s_y·exp(−x²/2) (the paper's
    last line), so the two differ by the factor exp(x²) = 1/W_δ².

    Parameters
    ----------
    s_y, m : Tensor, shape (N,)
    delta : float

    Returns
    -------
    Tensor, shape (N,)
    """
    x = delta * s_y - m
    return -x * s_y / torch.exp(-x ** 2 / 2)


# --------------------------------------------------------------------------- noise
def expected_changed_fraction(rate: float, num_classes: int) -> float:
    """Expected fraction of labels that uniform noise actually changes: rate·(C − 1)/C.

    H-CAT's uniform noise redraws the label of ``rate·N`` samples uniformly over
    all C classes, so each redrawn label stays the same with probability 1/C.

    Parameters
    ----------
    rate : float in [0, 1]
    num_classes : int ≥ 2

    Returns
    -------
    float
    """
    check_fraction("rate", rate)
    check_num_classes(num_classes)
    return rate * (num_classes - 1) / num_classes


def observed_weight_ranges(classes=(2, 3, 10, 100), settings=((10.0, 2.0, 6.0), (9.0, 3.0, 7.0)),
                           n: int = 100_000, seed: int = 10) -> list[dict]:
    """Observed min and max of W_α, W_β, W_δ on random softmax vectors, beside the printed bounds.

    Parameters
    ----------
    classes : sequence of int
    settings : sequence of (alpha, beta, delta)
    n : int
        Random softmax vectors per C (:func:`sample_probs`, generator seeded ``seed + C``).
    seed : int

    Returns
    -------
    list of dict
        Keys ``C``, ``setting`` and, for ``w`` in w_alpha, w_beta, w_delta, ``{w}_min``, ``{w}_max``,
        ``{w}_lo``, ``{w}_hi`` (the bounds of :func:`paper_bounds`).
    """
    rows = []
    for c in classes:
        probs, targets = sample_probs(n, c, generator=torch.Generator().manual_seed(seed + c))
        for setting in settings:
            bounds = paper_bounds(setting[0], setting[1])
            row = {"C": c, "setting": "%g, %g, %g" % tuple(setting)}
            for key, w in zip(("w_alpha", "w_beta", "w_delta"), weight_components(probs, targets, *setting)):
                row.update({f"{key}_min": float(w.min()), f"{key}_max": float(w.max()),
                            f"{key}_lo": bounds[key][0], f"{key}_hi": bounds[key][1]})
            rows.append(row)
    return rows
