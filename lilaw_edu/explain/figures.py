"""Matplotlib helpers for the book: samples, the difficulty region, weight maps, trajectories.

Every function draws with numbers from the package (:mod:`lilaw_edu.explain.explorer`
for the weight surfaces, :mod:`lilaw_edu.explain.theory` for the region's corners) and
returns the matplotlib ``Figure`` so a notebook can show or save it.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from lilaw_edu.explain.region import surfaces, values_at
from lilaw_edu.explain.theory import region_vertices

#: Number of classes used to draw the paper's C → ∞ region (Fig. 2).
MANY_CLASSES = 200
WEIGHT_TITLES = {"w_alpha": r"$W_\alpha$ (eq. 2)", "w_beta": r"$W_\beta$ (eq. 3)",
                 "w_delta": r"$W_\delta$ (eq. 4)", "w": r"$W$ (eq. 5)", "ce": r"CE $=-\log s_y$",
                 "wce": r"$W\cdot$CE (eq. 6)"}


def _image_for_imshow(img: Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) array for imshow."""
    arr = img.detach().cpu().float().clamp(0, 1).numpy()
    return arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))


def image_grid(rows: Sequence[Tensor], row_titles: Sequence[str], col_titles: Optional[Sequence[str]] = None,
               cell: float = 1.3) -> Figure:
    """A grid of images: one row per tensor.

    Parameters
    ----------
    rows : sequence of Tensor, each shape (K, C, H, W), float in [0, 1]
    row_titles : sequence of str, one per row
    col_titles : sequence of str, optional, one per column (or per row×column
        if ``len(col_titles) == len(rows) * K``)
    cell : float
        Inches per image.

    Returns
    -------
    Figure
    """
    n_rows, n_cols = len(rows), max(int(r.shape[0]) for r in rows)
    fig = Figure(figsize=(cell * n_cols + 1.2, cell * n_rows + 0.3), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for i, (images, title) in enumerate(zip(rows, row_titles)):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([]), ax.set_yticks([])
            if j < images.shape[0]:
                ax.imshow(_image_for_imshow(images[j]), cmap="gray", vmin=0, vmax=1)
            if col_titles is not None:
                k = i * n_cols + j if len(col_titles) == n_rows * n_cols else j
                if k < len(col_titles) and (i == 0 or len(col_titles) == n_rows * n_cols):
                    ax.set_title(col_titles[k], fontsize=8)
        axes[i, 0].set_ylabel(title, fontsize=8)
    return fig


def series_grid(series: Sequence[Tensor], titles: Sequence[str], labels: Optional[Sequence[str]] = None) -> Figure:
    """Overlay of several batches of time series, one panel per sample.

    Parameters
    ----------
    series : sequence of Tensor, each shape (K, T) or (K, 1, T); drawn on the same K panels
    titles : sequence of str, one legend entry per batch
    labels : sequence of str, optional, one panel title per sample

    Returns
    -------
    Figure
    """
    k = int(series[0].shape[0])
    fig = Figure(figsize=(2.4 * k, 2.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, k))
    for batch, name in zip(series, titles):
        values = batch.reshape(batch.shape[0], -1).detach().cpu().numpy()
        for j, ax in enumerate(axes):
            ax.plot(values[j], lw=0.9, label=name)
    for j, ax in enumerate(axes):
        ax.set_xticks([]), ax.tick_params(labelsize=7)
        if labels is not None:
            ax.set_title(labels[j], fontsize=8)
    axes[0].legend(fontsize=7)
    return fig


def draw_region_outline(ax, num_classes: Optional[int] = None, color: str = "k") -> None:
    """Outline of the closed (s_y, max s) region on ``ax`` (incorrect polygon + correct diagonal).

    Parameters
    ----------
    ax : matplotlib Axes
    num_classes : int or None
        None draws the paper's C → ∞ triangle.
    color : str
    """
    v = region_vertices(num_classes)   # (0, 1/(C-1)), (1/C, 1/C), (1/2, 1/2), (0, 1), (1, 1)
    poly = np.array([v[0], v[1], v[2], v[3], v[0]])
    ax.plot(poly[:, 0], poly[:, 1], color=color, lw=1)
    ax.plot([v[1, 0], 1], [v[1, 1], 1], color=color, lw=0.8)


def _draw_diagonal(ax, key: str, image, num_classes: int, params=(10.0, 2.0, 6.0), points: int = 200) -> None:
    """Colour the "correct" diagonal s_y = max s by ``key`` (a one-pixel line on the grid otherwise)."""
    m = np.linspace(1.0 / num_classes, 1.0, points)
    vals = values_at(m, m, *params, num_classes)[key]
    ax.scatter(m, m, c=vals, cmap=image.get_cmap(), norm=image.norm, s=14, lw=0, zorder=3)


def _axes_style(ax, title: str) -> None:
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel=r"$s_y$ (label probability)",
           ylabel=r"$\max s$", title=title, aspect="equal")
    ax.title.set_fontsize(9)


def _surface_image(ax, grid: np.ndarray, resolution: int, vmin=None, vmax=None, cmap: str = "viridis"):
    h = 0.5 / (resolution - 1)
    return ax.imshow(grid, origin="lower", extent=(-h, 1 + h, -h, 1 + h), cmap=cmap, vmin=vmin, vmax=vmax,
                     interpolation="nearest")


def plot_region(num_classes: Optional[int] = None, probs: Optional[Tensor] = None,
                targets: Optional[Tensor] = None, resolution: int = 201, ax=None) -> Figure:
    """The difficulty region (paper Fig. 2) shaded by cross-entropy, with sampled softmax vectors.

    Parameters
    ----------
    num_classes : int or None
        None: the paper's region for any C (drawn with C = 200).
    probs : Tensor, shape (N, C), optional
        Softmax vectors to scatter as (s_y, max s) points.
    targets : Tensor, shape (N,), optional
    resolution : int
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fig = ax.figure if ax is not None else Figure(figsize=(4.2, 3.8), layout="constrained")
    ax = ax if ax is not None else fig.subplots()
    c = MANY_CLASSES if num_classes is None else num_classes
    ce = surfaces(10.0, 2.0, 6.0, c, resolution)["ce"]
    img = _surface_image(ax, np.where(np.isfinite(ce), ce, np.nan), resolution, vmin=0, vmax=5, cmap="Greys")
    fig.colorbar(img, ax=ax, shrink=0.8, label="cross-entropy")
    draw_region_outline(ax, num_classes, color="tab:blue")
    _draw_diagonal(ax, "ce", img, c)
    if probs is not None and targets is not None:
        s_y = probs.gather(1, targets[:, None]).squeeze(1).numpy()
        ax.scatter(s_y, probs.max(1).values.numpy(), s=3, color="tab:orange", alpha=0.5, lw=0, zorder=4)
    _axes_style(ax, "any C (paper Fig. 2)" if num_classes is None else f"C = {num_classes}")
    return fig


def plot_regions_by_classes(classes: Sequence[int] = (2, 3, 10), samples: int = 3000, seed: int = 0) -> Figure:
    """One region panel per C, each with sampled softmax vectors (see :func:`lilaw_edu.explain.theory.sample_probs`).

    Parameters
    ----------
    classes : sequence of int
    samples : int
        Random softmax vectors per panel.
    seed : int

    Returns
    -------
    Figure
    """
    from lilaw_edu.explain.theory import sample_probs

    fig = Figure(figsize=(3.6 * len(classes), 3.4), layout="constrained")
    for ax, c in zip(np.atleast_1d(fig.subplots(1, len(classes))), classes):
        g = torch.Generator().manual_seed(seed + c)
        probs, targets = sample_probs(samples, c, generator=g)
        plot_region(c, probs, targets, resolution=121, ax=ax)
    return fig


def plot_weight_maps(alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0,
                     num_classes: Optional[int] = None, keys: Sequence[str] = ("w_alpha", "w_beta", "w_delta", "w"),
                     resolution: int = 201) -> Figure:
    """Heat maps of the weights over the region (values from :func:`lilaw_edu.explain.explorer.surfaces`).

    Parameters
    ----------
    alpha, beta, delta : float
    num_classes : int or None
        None: the paper's region (drawn with C = 200).
    keys : sequence of str
        Any of ``w_alpha``, ``w_beta``, ``w_delta``, ``w``, ``ce``, ``wce``.
    resolution : int

    Returns
    -------
    Figure
    """
    c = MANY_CLASSES if num_classes is None else num_classes
    grids = surfaces(alpha, beta, delta, c, resolution)
    fig = Figure(figsize=(3.3 * len(keys), 3.1), layout="constrained")
    for ax, key in zip(np.atleast_1d(fig.subplots(1, len(keys))), keys):
        grid = np.where(np.isfinite(grids[key]), grids[key], np.nan)
        img = _surface_image(ax, grid, resolution)
        fig.colorbar(img, ax=ax, shrink=0.8)
        draw_region_outline(ax, num_classes, color="0.5")
        _draw_diagonal(ax, key, img, c, (alpha, beta, delta))
        _axes_style(ax, WEIGHT_TITLES[key])
    fig.suptitle(rf"$\alpha={alpha:g},\ \beta={beta:g},\ \delta={delta:g}$" +
                 ("" if num_classes is None else f", C = {num_classes}"), fontsize=10)
    return fig


def plot_trajectories(histories: dict, x_key: str = "epoch", colors: Optional[dict] = None,
                      from_zero: bool = True) -> Figure:
    """α, β, δ over training, one line per run (paper Fig. 4).

    Parameters
    ----------
    histories : dict
        Run label -> list of per-epoch records with keys ``x_key``, ``alpha``, ``beta``, ``delta``.
        Labels starting with ``_`` are left out of the legend.
    x_key : str
    colors : dict, optional
        Run label -> matplotlib colour (default: the colour cycle).
    from_zero : bool
        True: every y-axis runs from 0 to at least twice the starting value, so that a curve's height
        shows its size relative to the parameter (a 0.5 % drift looks flat); False: auto-zoom.

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=(10, 2.8), layout="constrained")
    for ax, name in zip(fig.subplots(1, 3), ("alpha", "beta", "delta")):
        for label, hist in histories.items():
            ax.plot([r[x_key] for r in hist], [r[name] for r in hist], marker=".", label=label,
                    color=(colors or {}).get(label))
        ax.set(title={"alpha": r"$\alpha$", "beta": r"$\beta$", "delta": r"$\delta$"}[name], xlabel=x_key)
        ax.ticklabel_format(useOffset=False)
        values = [r[name] for hist in histories.values() for r in hist]
        if from_zero and values:
            ax.set_ylim(0, max(2 * values[0], 1.05 * max(values)))
    fig.axes[0].legend(fontsize=8)
    return fig


def plot_measured_vs_predicted(x: Sequence[float], measured: Sequence[float], predicted: Sequence[float],
                               xlabel: str, ylabel: str, title: str = "") -> Figure:
    """Measured points against a predicted curve (e.g. changed-label fraction vs rate).

    Returns
    -------
    Figure
    """
    fig = Figure(figsize=(4.2, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(x, predicted, "-", color="tab:blue", label="predicted")
    ax.plot(x, measured, "o", color="tab:orange", label="measured")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def plot_dominant_term(alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0,
                       num_classes: Optional[int] = None, resolution: int = 201) -> Figure:
    """Which of W_α, W_β, W_δ is largest at each point of the region, with the lines m = k·s_y.

    The lines through the origin with slopes α, δ and β are where W_α = 1/2, W_δ = 1
    and W_β = 1/2 (the arguments of eqs. 2–4 vanish there).

    Parameters
    ----------
    alpha, beta, delta : float
    num_classes : int or None
    resolution : int

    Returns
    -------
    Figure
    """
    from matplotlib.colors import ListedColormap

    c = MANY_CLASSES if num_classes is None else num_classes
    grids = surfaces(alpha, beta, delta, c, resolution)
    stack = np.stack([grids["w_alpha"], grids["w_beta"], grids["w_delta"]])
    inside = np.isfinite(stack).all(axis=0)
    dominant = np.where(inside, np.argmax(np.nan_to_num(stack, nan=-1.0), axis=0), np.nan)
    fig = Figure(figsize=(4.6, 3.9), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:green", "tab:red", "tab:orange"]
    _surface_image(ax, dominant, resolution, vmin=-0.5, vmax=2.5, cmap=ListedColormap(colors))
    draw_region_outline(ax, num_classes, color="0.3")
    s = np.linspace(0, 1, 50)
    for k, name, style in ((alpha, r"$m=\alpha s_y$: $W_\alpha=1/2$", "--"),
                           (delta, r"$m=\delta s_y$: $W_\delta=1$", ":"),
                           (beta, r"$m=\beta s_y$: $W_\beta=1/2$", "-.")):
        ax.plot(s, k * s, style, color="k", lw=0.9, label=name)
    diag = np.linspace(1.0 / c, 1.0, 200)
    vals = values_at(diag, diag, alpha, beta, delta, c)
    top = np.argmax(np.stack([vals["w_alpha"], vals["w_beta"], vals["w_delta"]]), axis=0)
    ax.scatter(diag, diag, c=[colors[i] for i in top], s=10, lw=0, zorder=3)
    for col, lab in zip(colors, [r"$W_\alpha$ largest", r"$W_\beta$ largest", r"$W_\delta$ largest"]):
        ax.scatter([], [], marker="s", color=col, label=lab)
    ax.legend(fontsize=6.5, loc="lower right")
    _axes_style(ax, rf"largest term, $\alpha,\beta,\delta = {alpha:g}, {beta:g}, {delta:g}$")
    return fig


def plot_gradient_multiplier(alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0,
                             num_classes: Optional[int] = None, resolution: int = 121) -> Figure:
    """The label logit's gradient under LiLAW relative to plain CE, over the region: default vs detached W.

    Values from :func:`lilaw_edu.explain.dynamics.gradient_multiplier` on softmax vectors built by
    :func:`lilaw_edu.explain.region.realize_probs`; the four Table 5 predictions are marked.

    Parameters
    ----------
    alpha, beta, delta : float
    num_classes : int or None
        None: the paper's region (drawn with C = 200).
    resolution : int

    Returns
    -------
    Figure
    """
    from lilaw_edu.explain.dynamics import gradient_multiplier, table5_multipliers
    from lilaw_edu.explain.region import feasible_mask, grid_axis, realize_probs

    c = MANY_CLASSES if num_classes is None else num_classes
    s, m = np.meshgrid(grid_axis(resolution), grid_axis(resolution))
    inside = feasible_mask(s, m, c) & (s > 0) & (s < m - 1e-9)
    diag = np.linspace(1.0 / c, 0.995, 200)
    rows = table5_multipliers((alpha, beta, delta))
    fig = Figure(figsize=(8.2, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, detach, title in ((axes[0], False, r"default: $W\nabla\ell + \ell\nabla W$"),
                              (axes[1], True, r"detached: $W\nabla\ell$")):
        grid = np.full(s.shape, np.nan)
        grid[inside] = gradient_multiplier(*realize_probs(s[inside], m[inside], c), alpha, beta, delta,
                                           detach_weights=detach).numpy()
        img = _surface_image(ax, grid, resolution, vmin=1.0, vmax=3.5, cmap="magma")
        on_diag = gradient_multiplier(*realize_probs(diag, diag, c), alpha, beta, delta, detach_weights=detach)
        ax.scatter(diag, diag, c=on_diag.numpy(), cmap=img.get_cmap(), norm=img.norm, s=14, lw=0, zorder=3)
        draw_region_outline(ax, num_classes, color="0.5")
        key = "detached" if detach else "default"
        for r in rows:
            ax.plot(r["s_y"], r["m"], "o", mfc="none", mec="tab:cyan", ms=7, zorder=4)
            ax.annotate(f"{r[key]:.2f}", (r["s_y"], r["m"]), xytext=(5, -11), textcoords="offset points",
                        fontsize=8, color="tab:cyan")
        _axes_style(ax, title)
    fig.colorbar(img, ax=axes, shrink=0.8, label=r"$\partial(W\ell)/\partial z_y\ /\ \partial\ell/\partial z_y$")
    return fig


def plot_weights_along_constant_m(alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0,
                                  maxes: Sequence[float] = (0.6, 0.8, 0.95), points: int = 300) -> Figure:
    """W_β, W_δ and W against s_y along lines of constant m = max s (off the diagonal, s_y ≤ 1 − m).

    The dotted vertical line in each colour marks s_y = m/δ, where W_δ peaks: to its left W_δ rises
    with s_y, and mislabelled samples (s_y ≈ 0) sit there.

    Parameters
    ----------
    alpha, beta, delta : float
    maxes : sequence of float
        Values of m, each in (1/2, 1).
    points : int

    Returns
    -------
    Figure
    """
    from lilaw_edu.explain.region import values_at

    if not all(0.5 < mm < 1.0 for mm in maxes):
        raise ValueError(f"maxes must lie in (0.5, 1), got {list(maxes)}")
    fig = Figure(figsize=(10, 2.9), layout="constrained")
    axes = fig.subplots(1, 3, sharex=True)
    for mm, color in zip(maxes, ("tab:blue", "tab:orange", "tab:green")):
        s = np.linspace(0.0, 1.0 - mm, points)
        vals = values_at(s, np.full_like(s, mm), alpha, beta, delta, MANY_CLASSES)
        for ax, key in zip(axes, ("w_beta", "w_delta", "w")):
            ax.plot(s, vals[key], color=color, label=f"m = {mm:g}")
            if mm / delta <= 1.0 - mm:
                ax.axvline(mm / delta, color=color, ls=":", lw=0.9)
    for ax, key in zip(axes, ("w_beta", "w_delta", "w")):
        ax.set(xlabel=r"$s_y$ (label probability)", title=WEIGHT_TITLES[key] + " at fixed $m$")
        ax.title.set_fontsize(9)
    axes[0].legend(fontsize=8)
    return fig
