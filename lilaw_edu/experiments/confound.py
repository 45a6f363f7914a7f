"""Freezing or weighting? The paper's comparison split into its two parts (issue 16, part 5).

The paper compares LiLAW fine-tuning the last two layers of a pretrained model with a baseline fine-tuning
every layer. For means over the same seeds the difference splits exactly::

    LiLAW_last2 - baseline_full = (baseline_last2 - baseline_full) + (LiLAW_last2 - baseline_last2)
         the paper's comparison =            freezing              +            weighting

:data:`PARTS` names the comparisons (arms as ``cpu-confound`` calls them), :func:`decomposition` gives the
three means per noise rate, :func:`plot_decomposition` draws them with their paired intervals.
"""
from __future__ import annotations

from lilaw_edu.experiments.analysis import paired, scale_digits

__all__ = ["PARTS", "decomposition", "plot_decomposition"]

PARTS = (("paper's comparison: LiLAW-last2 − baseline-full", "lilaw", "baseline"),
         ("freezing: baseline-last2 − baseline-full", "baseline-frozen", "baseline"),
         ("weighting: LiLAW-last2 − baseline-last2", "lilaw", "baseline-frozen"),
         ("weighting, nothing frozen: LiLAW-full − baseline-full", "lilaw-full", "baseline"))
"""(label, method, reference) of each comparison; the first three are the identity above."""


def _parts(df, row: str, metric: str) -> list:
    return [paired(df, row, method, ref, metric) for _, method, ref in PARTS[:3]]


def decomposition(df, rows_by_rate: dict, metric: str = "top1"):
    """The paper's comparison and its two parts, per noise rate.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`~lilaw_edu.experiments.analysis.tidy`, one preset's runs (the row labels must be unique).
    rows_by_rate : dict
        ``{noise rate: row label}``.
    metric : str
        A tidy metric column (accuracies are shown in points).

    Returns
    -------
    pandas.DataFrame
        Columns: noise, seeds, comparison, freezing, weighting, freezing + weighting, freezing share (%).
        Rates without runs are left out. ``freezing + weighting`` equals ``comparison`` up to rounding
        whenever all arms ran on the same seeds.
    """
    import pandas as pd
    scale, _ = scale_digits(metric)
    rows = []
    for rate, row in rows_by_rate.items():
        total, freezing, weighting = _parts(df, row, metric)
        if total is None or freezing is None or weighting is None:
            continue
        rows.append({"noise": f"{rate:.0%}", "seeds": total["n"], "comparison": scale * total["mean"],
                     "freezing": scale * freezing["mean"], "weighting": scale * weighting["mean"]})
    out = pd.DataFrame(rows, columns=["noise", "seeds", "comparison", "freezing", "weighting"])
    out["freezing + weighting"] = out["freezing"] + out["weighting"]
    out["freezing share (%)"] = 100 * out["freezing"] / out["comparison"]
    return out


def plot_decomposition(df, rows_by_rate: dict, metric: str = "top1", ax=None):
    """The first three :data:`PARTS` against the noise rate, paired means with 95 % t-intervals.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    scale, _ = scale_digits(metric)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for k, (name, method, ref) in enumerate(PARTS[:3]):
        diffs = [(100 * rate, paired(df, row, method, ref, metric)) for rate, row in rows_by_rate.items()]
        diffs = [(x, d) for x, d in diffs if d is not None]
        x = [rate + 1.2 * (k - 1) for rate, _ in diffs]
        y = [scale * d["mean"] for _, d in diffs]
        err = [[scale * (d["mean"] - d["ci_low"]) for _, d in diffs],
               [scale * (d["ci_high"] - d["mean"]) for _, d in diffs]]
        ax.errorbar(x, y, yerr=err, marker="os^"[k], capsize=3, ls="none", label=name.split(":")[0],
                    color=("tab:blue", "black", "tab:orange")[k])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="uniform noise rate (%)",
           ylabel=f"paired Δ {metric}" + (" (points)" if scale == 100 else ""))
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure
