"""Verdicts on paired differences, with p-values adjusted for the many tests of a chapter.

An experiment chapter runs one paired t-test per row (method vs reference over seeds). With
dozens of rows, about 5 % of them reach p < 0.05 by chance alone, so each chapter is one
*family*: its raw p-values are adjusted together, by Holm (family-wise error rate) and by
Benjamini-Hochberg (false discovery rate, :func:`scipy.stats.false_discovery_control`).
The verdict speaks from the Holm-adjusted p-value, in plain words.

Comparison with the paper: our mean change has the paper's sign, the opposite sign, or is
zero (never "disagrees" then); "DISAGREES" in capitals only when our 95 % interval excludes
the paper's printed change; a size ratio only when the paper's change is at least 0.1 points.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ALPHA", "ZERO_TOL", "holm", "benjamini_hochberg", "adjust", "verdict", "findings"]

ALPHA = 0.05          # the level an adjusted p-value is compared with
ZERO_TOL = 1e-9       # |difference| below this (in display units) is zero (floating-point residue)
MIN_PAPER_POINTS = 0.1  # no size ratio to a paper change smaller than this many points (0.001 of AUROC)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values: ``p_(k) * (m - k + 1)``, made monotone, capped at 1.

    Parameters
    ----------
    pvalues : array-like, shape (m,)
        Finite p-values in [0, 1].

    Returns
    -------
    numpy.ndarray, shape (m,)
        Adjusted p-values in the input order.
    """
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = stepped
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (:func:`scipy.stats.false_discovery_control`, method "bh").

    Parameters
    ----------
    pvalues : array-like, shape (m,)

    Returns
    -------
    numpy.ndarray, shape (m,)
    """
    from scipy.stats import false_discovery_control
    p = np.asarray(pvalues, dtype=float)
    return np.asarray(false_discovery_control(p, method="bh")) if p.size else p


def adjust(pvalues) -> tuple:
    """Holm and BH adjustment of a family in which some entries have no test (NaN or None).

    Returns
    -------
    holm_p, bh_p : list of float
        NaN where the input had no p-value; the family size is the number of finite entries.
    """
    raw = [float("nan") if p is None else float(p) for p in pvalues]
    idx = [i for i, p in enumerate(raw) if math.isfinite(p)]
    h, b = [float("nan")] * len(raw), [float("nan")] * len(raw)
    if idx:
        finite = [raw[i] for i in idx]
        for i, hv, bv in zip(idx, holm(finite), benjamini_hochberg(finite)):
            h[i], b[i] = float(hv), float(bv)
    return h, b


def _paper_part(mean, lo, hi, has_interval: bool, paper_delta, scale) -> str:
    paper = f"paper {paper_delta:+.4g}"
    if abs(mean) < ZERO_TOL:
        return f"zero difference ({paper})"
    sign = "same sign as paper" if (mean > 0) == (paper_delta > 0) else "opposite sign to paper"
    if has_interval and not (lo <= paper_delta <= hi):
        text = f"DISAGREES with {paper} (outside our 95 % CI); {sign}"
    elif has_interval:
        text = f"consistent with {paper} (inside our 95 % CI); {sign}"
    else:
        text = f"{paper}; {sign}"
    if abs(paper_delta) >= MIN_PAPER_POINTS * scale / 100.0:
        text += f"; {abs(mean) / abs(paper_delta):.2g}× paper's size"
    return text


def verdict(diff: dict | None, paper_delta: float | None = None, scale: float = 1.0,
            p_adjusted: float | None = None, method: str = "method") -> str:
    """One-line verdict on a paired difference ``method - reference``.

    Parameters
    ----------
    diff : dict or None
        :func:`lilaw_edu.experiments.analysis.paired` output (``mean``, ``ci_low``, ``ci_high``,
        ``std``, ``n``, ``p_value``), in the metric's own units; None when not run.
    paper_delta : float, optional
        The paper's printed change, in display units (accuracy points, AUROC).
    scale : float
        Multiplies our difference into display units (100 for accuracy fractions).
    p_adjusted : float, optional
        The family-adjusted (Holm) p-value; default the raw one (a family of one).
    method : str
        Name used in the words ("lilaw lower, adjusted p = 0.01").

    Returns
    -------
    str
        e.g. ``"no detectable difference (adjusted p = 0.62); consistent with paper +3.2 (inside our
        95 % CI); opposite sign to paper"``, or ``"not run yet"``.
    """
    if diff is None:
        return "not run yet"
    mean, lo, hi, n = diff["mean"] * scale, diff["ci_low"] * scale, diff["ci_high"] * scale, diff["n"]
    p_adj = diff["p_value"] if p_adjusted is None else p_adjusted
    if n < 2:
        text = "1 seed: no test"
    elif abs(mean) < ZERO_TOL and not (diff["std"] > 0):
        text = "no difference (identical on every seed)"
    elif not math.isfinite(p_adj):
        text = f"same difference on every seed ({method} {'higher' if mean > 0 else 'lower'}); no p-value"
    elif p_adj < ALPHA:
        text = f"{method} {'higher' if mean > 0 else 'lower'}, adjusted p = {p_adj:.2g}"
    else:
        text = f"no detectable difference (adjusted p = {p_adj:.2g})"
    if paper_delta is None:
        return text
    has_interval = n >= 2 and diff["std"] > 0 and math.isfinite(lo)  # a zero-spread interval says nothing
    return f"{text}; {_paper_part(mean, lo, hi, has_interval, paper_delta, scale)}"


def findings(table) -> str:
    """Markdown summary of a compare table: tallies against the paper and every disagreement, with numbers.

    Rows share runs (one baseline serves several rows, and the same runs appear under several
    metrics), so the tallies are not independent observations.
    """
    run = table[table["verdict"] != "not run yet"]
    if not len(run):
        return "No row has results yet (run `lilaw-edu sweep` for the presets above)."
    has_paper = run["paper Δ"] != "-"
    v = run["verdict"]
    same, opposite = v.str.contains("same sign as paper"), v.str.contains("opposite sign to paper")
    zero = has_paper & v.str.contains("zero difference|no difference", regex=True)
    disagree = v.str.contains("DISAGREES")
    detected = v.str.contains(r"(?:higher|lower), adjusted p", regex=True)
    lines = [f"{len(run)} of {len(table)} rows have results, {int(has_paper.sum())} of them with a paper row. "
             f"Our mean change has the paper's sign in {int((same & has_paper).sum())}, the opposite sign in "
             f"{int((opposite & has_paper).sum())}, and is zero in {int(zero.sum())}. "
             f"Our 95 % interval excludes the paper's change (DISAGREES) in {int(disagree.sum())}. "
             f"After the Holm adjustment over all paired tests of this chapter, {int(detected.sum())} of these "
             f"differences from the reference remain detectable. "
             f"Rows share baseline runs and metrics, so these counts are not independent."]
    for _, r in run[disagree].iterrows():
        lines.append(f"- **{r['row']}**, {r['metric']} ({r['method vs reference']}): paper {r['paper Δ']}, "
                     f"ours {r['ours Δ [95% CI]']} (p = {r['p']}, Holm p = {r['p Holm']}, {r['seeds']} seeds).")
    return "\n".join(lines)
