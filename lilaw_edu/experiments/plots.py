"""Plots of sweep results for the experiment chapters (matplotlib; nothing is trained here).

Every function takes the tidy table of :func:`lilaw_edu.experiments.analysis.tidy` (or the
raw records for per-epoch histories) and draws onto a given or new axes.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_vs_rate", "trajectory_histories", "plot_run_trajectories", "plot_seed_spread", "METHOD_STYLE",
           "method_color", "plot_cheap_meta", "EPOCH_CURVES", "plot_epoch_curves"]

METHOD_STYLE = {"baseline": dict(color="tab:gray", marker="o"), "lilaw": dict(color="tab:blue", marker="s"),
                "lilaw-frozen": dict(color="tab:orange", marker="^"), "baseline-frozen": dict(color="black", marker="v"),
                "lilaw-detached": dict(color="tab:purple", marker="D"),
                "baseline-cleanstop": dict(color="tab:brown", marker="x"),
                "gce": dict(color="tab:green", marker="P"), "sce": dict(color="tab:olive", marker="*"),
                # Table 6 ablations (only the named terms of W)
                "lilaw-ab": dict(color="tab:cyan", marker="s"), "lilaw-ad": dict(color="tab:red", marker="s"),
                "lilaw-bd": dict(color="tab:pink", marker="s"), "lilaw-a": dict(color="navy", marker="s"),
                "lilaw-b": dict(color="goldenrod", marker="s"), "lilaw-d": dict(color="teal", marker="s"),
                "lilaw-focal": dict(color="darkblue", marker="h"), "baseline-focal": dict(color="dimgray", marker="h"),
                "lilaw-trainmode": dict(color="slateblue", marker="<"),
                "l2rw": dict(color="crimson", marker=">"), "mwnet": dict(color="darkgreen", marker="<"),
                "cleanlab": dict(color="darkorange", marker="X"),
                "lilaw-cheap": dict(color="deepskyblue", marker="d"), "lilaw-k4": dict(color="steelblue", marker="d"),
                "lilaw-k4s": dict(color="royalblue", marker="d"), "lilaw-k8s": dict(color="midnightblue", marker="d"),
                # issue 16, part 5: LiLAW fine-tuning every layer; meta learning rate x100, x1000
                "lilaw-full": dict(color="lightskyblue", marker="s"),
                "lilaw-mlr100": dict(color="darkviolet", marker="o"), "lilaw-mlr1000": dict(color="magenta", marker="o")}
_FALLBACK_COLORS = ("#8c564b", "#e377c2", "#bcbd22", "#17becf", "#9467bd", "#d62728", "#2ca02c", "#ff7f0e")


def method_color(method: str) -> str:
    """The fixed colour of ``method`` in every figure: :data:`METHOD_STYLE`, else one picked from the
    method's name (the same in every call, independent of matplotlib's colour cycle)."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a str, got {type(method).__name__}")
    if method in METHOD_STYLE:
        return METHOD_STYLE[method]["color"]
    import hashlib
    return _FALLBACK_COLORS[int(hashlib.sha256(method.encode()).hexdigest(), 16) % len(_FALLBACK_COLORS)]


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


def trajectory_histories(records: list, preset: str, rows, method: str = "lilaw") -> tuple:
    """Per-epoch α, β, δ histories of ``method`` in the given rows, one per seed, one colour per row.

    Parameters
    ----------
    records : list of dict
        Result records (from :func:`lilaw_edu.experiments.analysis.load_results`).
    preset : str
    rows : sequence of str
        Row labels (e.g. the 0 % and 50 % rows).
    method : str

    Returns
    -------
    histories : dict
        Label -> list of per-epoch dicts (``epoch``, ``alpha``, ``beta``, ``delta``, ...); the first
        seed of a row is labelled by the row, the others start with ``_`` (kept out of legends).
    colors : dict
        Label -> colour (the same for every seed of a row).
    """
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    histories, colors = {}, {}
    for k, row in enumerate(rows):
        recs = sorted((r for r in records if r["preset"] == preset and r["row"] == row),
                      key=lambda r: r["payload"]["config"]["seed"])
        for i, rec in enumerate(recs):
            hist = rec["payload"]["result"]["methods"].get(method, {}).get("history", [])
            if hist:
                label = row if i == 0 else f"_{row} seed {rec['payload']['config']['seed']}"
                histories[label], colors[label] = hist, cycle[k % len(cycle)]
    return histories, colors


def plot_run_trajectories(records: list, preset: str, rows, method: str = "lilaw"):
    """α, β, δ after every epoch, one line per seed, one colour per row (paper Fig. 4).

    Draws with :func:`lilaw_edu.explain.figures.plot_trajectories` (the book's one trajectory plot).

    Returns
    -------
    matplotlib Figure

    Raises
    ------
    ValueError
        When no record of ``preset`` in ``rows`` has a history of ``method``.
    """
    from lilaw_edu.explain.figures import plot_trajectories
    histories, colors = trajectory_histories(records, preset, rows, method)
    if not histories:
        raise ValueError(f"no {method} history in preset {preset!r} rows {list(rows)}; "
                         f"run 'lilaw-edu sweep {preset}' first")
    return plot_trajectories(histories, colors=colors)


def plot_seed_spread(df, preset: str, rows, metric: str, methods=("baseline", "lilaw"), ax=None):
    """Every seed's value per (row, method), with the mean as a bar (paper Fig. 5).

    Each method has one fixed colour (:func:`method_color`) for its bars, its dots and its legend
    entry, whatever the order of ``methods`` and whichever rows it has results in.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy results.
    preset, metric : str
    rows : sequence of str
        Row labels, one group of bars each.
    methods : sequence of str
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
    """
    ax = ax or plt.subplots(figsize=(6, 3.2))[1]
    scale, width = _scale(metric), 0.8 / max(1, len(methods))
    for j, method in enumerate(methods):
        color, labelled = method_color(method), False
        for i, row in enumerate(rows):
            vals = df[(df["preset"] == preset) & (df["row"] == row) & (df["method"] == method)][metric] * scale
            x = i + (j - (len(methods) - 1) / 2) * width
            if len(vals):
                ax.bar(x, vals.mean(), width=width * 0.9, alpha=0.35, color=color, edgecolor=color,
                       label=None if labelled else method, gid=f"bar:{method}")
                ax.scatter(np.full(len(vals), x), vals, s=12, color=color, zorder=3, gid=f"dots:{method}")
                labelled = True
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


def plot_cheap_meta(points: list, variance: dict | None = None, *, time_goal: float = 1.10,
                    accuracy_margin: float = 0.5):
    """Issue 13: the time/accuracy frontier of cheaper meta steps, and the meta-gradient's variance against r.

    Parameters
    ----------
    points : list of dict
        One per (dataset, method): ``dataset``, ``method``, ``time_ratio`` (epoch time / baseline, from
        ``benchmarks/overhead.py``), ``mean``, ``ci_low``, ``ci_high`` (paired top-1 difference method -
        current LiLAW over seeds, in points; the current method itself at 0 with no interval) and ``n``.
    variance : dict, optional
        ``benchmarks/results/meta-variance-ecg5000.json``; adds a second panel (variance of the
        meta-gradient against the validation batch size B/r, measured and predicted).
    time_goal, accuracy_margin : float
        Drawn as the time goal (vertical line) and the ±margin band (points of top-1).
        Datasets are shifted by ±0.004 along the time axis so that their error bars stay apart.

    Returns
    -------
    matplotlib Figure
    """
    fig, axes = plt.subplots(1, 2 if variance else 1, figsize=(10.5 if variance else 6, 3.6), squeeze=False)
    ax = axes[0][0]
    datasets = sorted({p["dataset"] for p in points})
    markers = dict(zip(sorted({p["method"] for p in points}), "os^DvP*X"))
    colors = dict(zip(datasets, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    ax.axhspan(-accuracy_margin, accuracy_margin, color="tab:green", alpha=0.12, label=f"±{accuracy_margin:g} points")
    ax.axvline(time_goal, color="tab:red", ls="--", lw=1, label=f"{time_goal:.2f}x goal")
    for p in points:
        err = None if p.get("ci_low") is None or np.isnan(p["ci_low"]) else \
            [[p["mean"] - p["ci_low"]], [p["ci_high"] - p["mean"]]]
        shift = 0.004 * (datasets.index(p["dataset"]) - (len(datasets) - 1) / 2)  # datasets side by side
        ax.errorbar(p["time_ratio"] + shift, p["mean"], yerr=err, marker=markers[p["method"]], color=colors[p["dataset"]],
                    capsize=3, ls="none", ms=6)
    for m, mk in markers.items():
        ax.plot([], [], mk, color="gray", ls="none", label=m)
    for d, c in colors.items():
        ax.plot([], [], "s", color=c, ls="none", label=d)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(left=min(0.98, ax.get_xlim()[0]))
    ax.set_xlabel("epoch time / baseline (CPU benchmark)")
    ax.set_ylabel("Δ test top-1 vs current LiLAW (points)")
    ax.legend(fontsize=7, ncol=2)
    if variance:
        ax2 = axes[0][1]
        for epoch, rec in variance["epochs"].items():
            by_r = [rec["by_r"][str(r)] for r in variance["divisors"]]
            m = [v["batch_size"] for v in by_r]
            line = ax2.loglog(m, [v["variance"] for v in by_r], "o-", label=f"epoch {epoch}")[0]
            ax2.loglog(m, [v["predicted_variance"] for v in by_r], ":", color=line.get_color())
        ax2.set_xticks(m, [f"{b}\n(r={r})" for b, r in zip(m, variance["divisors"])])
        ax2.xaxis.set_minor_formatter(plt.NullFormatter())
        ax2.set_xlabel("validation batch size B/r")
        ax2.set_ylabel("variance of ∂L_W/∂(α,β,δ) (trace)")
        ax2.set_title(f"{variance['dataset']}, {variance['draws']} batches per r (dotted: σ²/m·(N−m)/(N−1))",
                      fontsize=8)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig



EPOCH_CURVES = (("val_loss", "validation cross-entropy\n(noisy labels)"),
                ("val_acc", "validation accuracy\n(noisy labels)"), ("test_top1", "test top-1"))


def plot_epoch_curves(records: list, preset: str, row: str, methods, keys=EPOCH_CURVES, axes=None):
    """Per-epoch history values averaged over seeds, one panel per key, one line per method; a marker on each
    line at the epoch the lowest mean validation cross-entropy picks.

    Parameters
    ----------
    records : list of dict
        Result records; the panels need history keys ``keys`` (``test_top1`` needs ``test_each_epoch``).
    preset, row : str
    methods : sequence of str
    keys : sequence of (history key, panel title)
    axes : sequence of matplotlib Axes, optional
        One per key.

    Returns
    -------
    matplotlib Figure
    """
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 2.9))
    for method in methods:
        hists = [r["payload"]["result"]["methods"][method]["history"] for r in records
                 if (r["preset"], r["row"]) == (preset, row) and method in r["payload"]["result"]["methods"]]
        if not hists:
            raise ValueError(f"no {method} runs in preset {preset!r} row {row!r}")
        mean = {k: np.nanmean([[e[k] for e in h] for h in hists], axis=0) for k, _ in keys}
        epochs = np.arange(1, len(mean[keys[0][0]]) + 1)
        pick = int(np.nanargmin(mean["val_loss"])) if "val_loss" in mean else None
        for ax, (key, title) in zip(axes, keys):
            ax.plot(epochs, mean[key], color=method_color(method), label=method, lw=1.5)
            if pick is not None:
                ax.plot(epochs[pick], mean[key][pick], "o", color=method_color(method), ms=6)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    axes[0].figure.tight_layout()
    return axes[0].figure
