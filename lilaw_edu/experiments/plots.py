"""Plots of sweep results for the experiment chapters (matplotlib; nothing is trained here).

Every function takes the tidy table of :func:`lilaw_edu.experiments.analysis.tidy` (or the
raw records for per-epoch histories) and draws onto a given or new axes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_vs_rate", "plot_trajectories", "plot_seed_spread", "METHOD_STYLE"]

METHOD_STYLE = {"baseline": dict(color="tab:gray", marker="o"), "lilaw": dict(color="tab:blue", marker="s"),
                "lilaw-frozen": dict(color="tab:orange", marker="^"), "baseline-frozen": dict(color="black", marker="v"),
                "lilaw-detached": dict(color="tab:purple", marker="D"), "baseline-cleanstop": dict(color="tab:brown",
                                                                                            marker="x"),
                "gce": dict(color="tab:green", marker="P"), "sce": dict(color="tab:olive", marker="*")}


def _scale(metric: str) -> float:
    return 100.0 if metric.startswith("top") else 1.0


def plot_vs_rate(df, preset: str, dataset: str, metric: str, methods=("baseline", "lilaw"), ax=None):
    """Mean ± std over seeds of ``metric`` against the uniform noise rate (paper Fig. 3, 6, 7).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy results; rows with ``noise`` "none" (rate 0) or "uniform" are used.
    preset, dataset, metric : str
    methods : sequence of str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    sub = df[(df["preset"] == preset) & (df["dataset"] == dataset) & df["noise"].isin(["none", "uniform"])]
    sub = sub[sub["row"].str.count("/") == 1]  # plain rows only (no /focal, /rec, ... variants)
    scale = _scale(metric)
    for method in methods:
        m = sub[sub["method"] == method].groupby("rate")[metric]
        if not len(m):
            continue
        mean, std = m.mean() * scale, m.std(ddof=1).fillna(0) * scale
        ax.errorbar(mean.index * 100, mean.values, yerr=std.values, capsize=3, label=method,
                    **METHOD_STYLE.get(method, {}))
    ax.set_xlabel("uniform noise rate (%)")
    ax.set_ylabel(f"test {metric}" + (" (%)" if scale == 100 else ""))
    ax.set_title(f"{dataset} ({preset})", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes)
    return ax


def plot_trajectories(records: list, preset: str, rows, method: str = "lilaw", axes=None):
    """α, β, δ after every epoch, one line per seed, one colour per row (paper Fig. 4).

    Parameters
    ----------
    records : list of dict
        Result records (from :func:`lilaw_edu.experiments.analysis.load_results`).
    preset : str
    rows : sequence of str
        Row labels to draw (e.g. the 0 % and 50 % rows).
    method : str
    axes : three matplotlib Axes, optional

    Returns
    -------
    array of three Axes
    """
    if axes is None:
        axes = plt.subplots(1, 3, figsize=(11, 3))[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, row in enumerate(rows):
        recs = sorted((r for r in records if r["preset"] == preset and r["row"] == row),
                      key=lambda r: r["payload"]["config"]["seed"])
        for i, rec in enumerate(recs):
            hist = rec["payload"]["result"]["methods"].get(method, {}).get("history", [])
            epochs = [h["epoch"] for h in hist]
            for ax, name in zip(axes, ("alpha", "beta", "delta")):
                ax.plot(epochs, [h[name] for h in hist], color=colours[k % len(colours)], alpha=0.7,
                        label=row if i == 0 else None)
    for ax, name in zip(axes, ("α", "β", "δ")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if not ax.get_lines():
            ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes)
    if axes[0].get_lines():
        axes[0].legend(fontsize=7)
    return axes


def plot_seed_spread(df, preset: str, rows, metric: str, methods=("baseline", "lilaw"), ax=None):
    """Every seed's value per (row, method), with the mean as a bar (paper Fig. 5).

    Returns
    -------
    matplotlib Axes
    """
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    scale, width = _scale(metric), 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        for i, row in enumerate(rows):
            vals = df[(df["preset"] == preset) & (df["row"] == row) & (df["method"] == method)][metric] * scale
            x = i + (j - (len(methods) - 1) / 2) * width
            if len(vals):
                ax.bar(x, vals.mean(), width=width * 0.9, alpha=0.35, color=METHOD_STYLE.get(method, {}).get("color"),
                       label=method if i == 0 else None)
                ax.scatter(np.full(len(vals), x), vals, s=12, color=METHOD_STYLE.get(method, {}).get("color"))
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.split("/", 1)[-1] for r in rows], fontsize=8)
    ax.set_ylabel(f"test {metric}" + (" (%)" if scale == 100 else ""))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
        lo = min(p.get_height() for p in ax.patches)
        ax.set_ylim(bottom=max(0, lo - 0.15 * abs(lo)))
    else:
        ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes)
    return ax
