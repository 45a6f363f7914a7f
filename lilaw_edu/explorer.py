"""The α/β/δ explorer: LiLAW's weights over the difficulty region, live.

Two front ends share one set of numbers, all computed by :mod:`lilaw_edu.weighting`:

* :func:`interactive_explorer` — ipywidgets sliders (Jupyter, Colab) that redraw
  four matplotlib heat maps (W_α, W_β, W_δ, W·CE) over the region of attainable
  ``(s_y, max s)`` pairs for ``C`` classes.
* :func:`static_explorer_html` — the same explorer as a self-contained ``<div>``
  with inline JavaScript and ``<canvas>`` panels for the rendered book: no kernel,
  no CDN, works from ``file://``. The page embeds reference values computed here
  at build time and the script checks its own arithmetic against them on load.

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

import contextlib
import functools
import hashlib
import html
import io
import itertools
import json
import time
from importlib import resources
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from .losses import per_sample_loss
from .weighting import lilaw_weights, weight_components

PANELS = ("w_alpha", "w_beta", "w_delta", "wce")
PANEL_TITLES = {"w_alpha": "W_α = σ(α·s_y − m)", "w_beta": "W_β = σ(−(β·s_y − m))",
                "w_delta": "W_δ = exp(−(δ·s_y − m)²/2)", "wce": "W·CE, CE = −log s_y"}
MPL_TITLES = {"w_alpha": r"$W_\alpha=\sigma(\alpha s_y - m)$", "w_beta": r"$W_\beta=\sigma(-(\beta s_y - m))$",
              "w_delta": r"$W_\delta=e^{-(\delta s_y - m)^2/2}$", "wce": r"$W\cdot$CE$,\ $CE$=-\log s_y$"}
# Fixed colour ranges; None means "the panel's largest finite value".
PANEL_RANGES = {"w_alpha": (0.0, 1.0), "w_beta": (0.0, 1.0), "w_delta": (0.0, 1.0), "wce": (0.0, None)}
SLIDERS = {"alpha": (0.0, 20.0, 0.1), "beta": (0.0, 10.0, 0.1), "delta": (0.0, 15.0, 0.1), "C": (2, 100, 1)}
VALUE_KEYS = ("w_alpha", "w_beta", "w_delta", "w", "ce", "wce")
_ids = itertools.count()


def _check_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 3 <= resolution <= 1001:
        raise ValueError(f"resolution must be an integer in [3, 1001], got {resolution!r}")
    return int(resolution)


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
    c = _check_classes(num_classes)
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
    c = _check_classes(num_classes)
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


@contextlib.contextmanager
def _one_torch_thread():
    """Run a few-thousand-element computation on one thread.

    At this size threads buy nothing, and on a busy 2-core machine torch's
    thread pool can turn a 5 ms update into 300 ms.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def grid_axis(resolution: int) -> np.ndarray:
    """Grid nodes ``0, 1/(n−1), …, 1`` shared by both explorers (shape (n,))."""
    return np.linspace(0.0, 1.0, _check_resolution(resolution))


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
    mask, probs, targets = _grid_points(_check_classes(num_classes), _check_resolution(resolution))
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


class WeightExplorer:
    """ipywidgets front end: sliders for α, β, δ, C and four heat maps.

    Parameters
    ----------
    C : int
        Initial number of classes.
    resolution : int
        Grid nodes per axis.
    alpha, beta, delta : float
        Initial LiLAW parameters (paper defaults 10, 2, 6).

    Attributes
    ----------
    widget : ipywidgets.VBox
        What to display.
    sliders : dict of ipywidgets sliders
    images : dict of matplotlib AxesImage
        Updated in place with ``set_data`` on every change.
    update_times : list of float
        Seconds taken by each redraw (compute + render).
    """

    def __init__(self, C: int = 10, resolution: int = 121, alpha: float = 10.0, beta: float = 2.0,
                 delta: float = 6.0):
        import ipywidgets as widgets

        self.resolution = _check_resolution(resolution)
        self.sliders = {name: widgets.FloatSlider(value=float(v), min=lo, max=hi, step=st, description=name,
                                                  continuous_update=True)
                        for name, v, (lo, hi, st) in zip(("alpha", "beta", "delta"), (alpha, beta, delta),
                                                         (SLIDERS[k] for k in ("alpha", "beta", "delta")))}
        lo, hi, st = SLIDERS["C"]
        self.sliders["C"] = widgets.IntSlider(value=_check_classes(C), min=lo, max=hi, step=st, description="C")
        self.figure, self.images = self._build_figure()
        self.update_times = []
        self.image = widgets.Image(format="png")
        self.status = widgets.HTML()
        for slider in self.sliders.values():
            slider.observe(lambda change: self.update(), names="value")
        self.widget = widgets.VBox([widgets.HBox(list(self.sliders.values())[:2]),
                                    widgets.HBox(list(self.sliders.values())[2:]), self.image, self.status])
        self.widget.explorer = self
        self.update()

    def _build_figure(self):
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")

        figure = Figure(figsize=(12, 3.1), dpi=72, layout="constrained")
        FigureCanvasAgg(figure)
        images, h = {}, 0.5 / (self.resolution - 1)
        for ax, key in zip(figure.subplots(1, 4), PANELS):
            lo, hi = PANEL_RANGES[key]
            images[key] = ax.imshow(np.zeros((2, 2)), origin="lower", extent=(-h, 1 + h, -h, 1 + h),
                                    cmap=cmap, interpolation="nearest", animated=True,
                                    vmin=lo, vmax=10.0 if hi is None else hi)
            ax.set(title=MPL_TITLES[key], xlabel=r"$s_y$ (label's probability)", ylabel=r"$m = \max_j s_j$")
            figure.colorbar(images[key], ax=ax, shrink=0.85)
        images["wce"].colorbar.ax.set_animated(True)  # its ticks follow the largest W·CE
        figure.canvas.draw()  # lay out once, then freeze the layout and keep the static background
        figure.set_layout_engine("none")
        figure.canvas.draw()
        self._background = figure.canvas.copy_from_bbox(figure.bbox)
        return figure, images

    def _render_png(self) -> bytes:
        """Blit the images (and the W·CE colour bar) onto the cached background; encode as PNG."""
        from PIL import Image

        canvas = self.figure.canvas
        canvas.restore_region(self._background)
        for image in self.images.values():
            self.figure.draw_artist(image)
        self.figure.draw_artist(self.images["wce"].colorbar.ax)
        buffer = io.BytesIO()
        Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).save(
            buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def params(self) -> dict:
        """Current slider values: ``alpha``, ``beta``, ``delta`` (float) and ``C`` (int)."""
        return {k: s.value for k, s in self.sliders.items()}

    def update(self) -> float:
        """Recompute the surfaces, ``set_data`` the images, blit and re-encode; return seconds taken."""
        start = time.perf_counter()
        p = self.params()
        with _one_torch_thread():
            grids = surfaces(p["alpha"], p["beta"], p["delta"], p["C"], self.resolution)
        for key, image in self.images.items():
            image.set_data(grids[key])
            image.set_clim(*panel_range(key, grids[key]))
        self.image.value = self._render_png()
        elapsed = time.perf_counter() - start
        self.update_times.append(elapsed)
        self.status.value = (f"C = {p['C']}: {int(np.isfinite(grids['w']).sum())} attainable grid points "
                             f"(grey: unattainable); redraw {1000 * elapsed:.0f} ms")
        return elapsed


def interactive_explorer(C: int = 10, resolution: int = 121, alpha: float = 10.0, beta: float = 2.0,
                         delta: float = 6.0):
    """Sliders for α, β, δ and C redrawing W_α, W_β, W_δ and W·CE over the region.

    Parameters
    ----------
    C : int
        Initial number of classes (slider 2–100).
    resolution : int
        Grid nodes per axis.
    alpha, beta, delta : float
        Initial parameters.

    Returns
    -------
    ipywidgets.VBox
        Display it in a notebook cell; ``.explorer`` is the :class:`WeightExplorer`.
    """
    return WeightExplorer(C, resolution, alpha, beta, delta).widget


def explorer_update_time(C: int = 10, resolution: int = 121, repeats: int = 5) -> dict:
    """Time slider-driven redraws of the ipywidgets explorer (no frontend needed).

    Parameters
    ----------
    C, resolution : int
    repeats : int
        Slider moves per parameter (α, β, δ, C).

    Returns
    -------
    dict
        ``median_s``, ``max_s`` and ``count`` over all timed updates.
    """
    explorer = WeightExplorer(C, resolution)
    explorer.update_times.clear()
    moves = {"alpha": np.linspace(1, 19, repeats), "beta": np.linspace(0.5, 9, repeats),
             "delta": np.linspace(1, 14, repeats), "C": np.linspace(2, 100, repeats).round().astype(int)}
    for name, values in moves.items():
        for v in values:
            explorer.sliders[name].value = v.item()
    times = np.array(explorer.update_times)
    return {"median_s": float(np.median(times)), "max_s": float(times.max()), "count": int(times.size)}


# ---------------------------------------------------------------- static HTML

def default_reference_points(num_classes: int = 10) -> list[tuple[float, float, float, float, float]]:
    """Attainable ``(s_y, max s, α, β, δ)`` tuples for the page's self-check.

    Parameters
    ----------
    num_classes : int

    Returns
    -------
    list of tuple
        Nodes of a coarse grid inside the region for ``num_classes`` times four
        parameter settings: the paper's initial (10, 2, 6), Table 5's later (9, 3, 7),
        and two far apart (small and at the sliders' ends).
    """
    axis = np.linspace(0.0, 1.0, 9)[1:]
    s, m = (a.ravel() for a in np.meshgrid(axis, axis))
    keep = feasible_mask(s, m, num_classes)
    params = [(10.0, 2.0, 6.0), (9.0, 3.0, 7.0), (0.3, 0.4, 12.9), (20.0, 10.0, 15.0)]
    return [(float(a), float(b), *p) for a, b in zip(s[keep], m[keep]) for p in params]


def reference_values(points: Iterable[Sequence[float]], num_classes: int = 10) -> list[dict]:
    """Values computed by ``lilaw_edu`` at ``(s_y, max s, α, β, δ)`` tuples.

    Parameters
    ----------
    points : iterable of 5-tuples
        Each ``(s_y, max s)`` must be attainable with ``num_classes`` classes.
    num_classes : int

    Returns
    -------
    list of dict
        ``s``, ``m``, ``C``, ``alpha``, ``beta``, ``delta`` and the keys of :func:`values_at`.
    """
    rows = []
    for point in points:
        if len(point) != 5:
            raise ValueError(f"reference_points must hold (s_y, s_max, alpha, beta, delta) tuples, got {point!r}")
        s, m, a, b, d = (float(x) for x in point)
        if not s > 0:
            raise ValueError(f"reference s_y must be > 0 (cross-entropy is infinite at 0), got {s}")
        vals = values_at([s], [m], a, b, d, num_classes)
        rows.append({"s": s, "m": m, "C": int(num_classes), "alpha": a, "beta": b, "delta": d,
                     **{k: float(vals[k][0]) for k in VALUE_KEYS}})
    return rows


def mask_reference(num_classes: int, count: int = 15) -> list[list]:
    """``[s, m, C, feasible]`` rows over a coarse grid (including the region's edges)."""
    axis = np.linspace(0.0, 1.0, count)
    out = []
    for c in sorted({2, 3, int(num_classes), 100}):
        s, m = (a.ravel() for a in np.meshgrid(axis, axis))
        out += [[float(a), float(b), c, bool(f)] for a, b, f in zip(s, m, feasible_mask(s, m, c))]
    return out


def _colormap_lut(name: str = "viridis") -> list[list[int]]:
    """The 256 RGB bytes matplotlib itself paints with for colour map ``name``."""
    import matplotlib

    return matplotlib.colormaps[name].resampled(256)(np.arange(256), bytes=True)[:, :3].tolist()


def panel_rgb(value: float, lo: float, hi: float, name: str = "viridis") -> tuple[list[int], bool]:
    """RGB bytes matplotlib gives ``value`` on a panel with colour range ``[lo, hi]``.

    Returns
    -------
    rgb : list of int
    ambiguous : bool
        True when the value sits within 1e-9 of a boundary between two of the 256
        colours, where a last-bit difference may legitimately pick the neighbour.
    """
    import matplotlib

    t = (value - lo) / (hi - lo)
    rgb = matplotlib.colormaps[name].resampled(256)(t, bytes=True)[:3]
    return [int(c) for c in rgb], bool(abs(t * 256 - round(t * 256)) < 1e-9)


def _static_text(name: str) -> str:
    return resources.files("lilaw_edu").joinpath("static", name).read_text(encoding="utf-8")


def _json_for_script(obj) -> str:
    # "</" would close the <script> element early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def static_explorer_html(reference_points: Optional[Iterable[Sequence[float]]] = None, C: int = 10,
                         alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0, resolution: int = 121,
                         explorer_id: Optional[str] = None) -> str:
    """A self-contained HTML explorer for pages without a kernel.

    Parameters
    ----------
    reference_points : iterable of (s_y, s_max, alpha, beta, delta), optional
        Points where the page checks its JavaScript against ``lilaw_edu``;
        default :func:`default_reference_points` for ``C``.
    C : int
        Initial number of classes (slider 2–100).
    alpha, beta, delta : float
        Initial slider values.
    resolution : int
        Canvas pixels per axis (grid nodes as in :func:`surfaces`).
    explorer_id : str, optional
        Element id of the root ``<div>``; a unique one is made when omitted, so
        several explorers can share a page.

    Returns
    -------
    str
        One ``<div class="lilaw-explorer">`` with inline CSS, a JSON config
        (slider ranges, colour map, reference values) and the inline script
        from ``lilaw_edu/static/explorer.js``. No external URL is referenced.
    """
    points = default_reference_points(C) if reference_points is None else list(reference_points)
    for name, value, (lo, hi, _) in (("alpha", alpha, SLIDERS["alpha"]), ("beta", beta, SLIDERS["beta"]),
                                     ("delta", delta, SLIDERS["delta"])):
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}] (the slider range), got {value}")
    config = {"C": _check_classes(C), "alpha": float(alpha), "beta": float(beta), "delta": float(delta),
              "resolution": _check_resolution(resolution), "sliders": SLIDERS, "panels": list(PANELS),
              "titles": PANEL_TITLES, "ranges": PANEL_RANGES, "lut": _colormap_lut(),
              "reference": reference_values(points, C), "maskReference": mask_reference(C)}
    payload = _json_for_script(config)
    if explorer_id is None:
        digest = hashlib.sha1(payload.encode()).hexdigest()[:8]
        explorer_id = f"lilaw-explorer-{next(_ids)}-{digest}"
    eid = html.escape(explorer_id, quote=True)
    return (f'<div class="lilaw-explorer" id="{eid}" data-lilaw-explorer="1">\n'
            f"<style>{_static_text('explorer.css')}</style>\n"
            f'<script type="application/json" class="lilaw-ex-config">{payload}</script>\n'
            f'<noscript>The interactive explorer needs JavaScript.</noscript>\n'
            f"<script>{_static_text('explorer.js')}\n"
            f'window.LiLAWExplorer.mount(document.getElementById("{eid}"));</script>\n</div>')


def standalone_page(*fragments: str, title: str = "LiLAW explorer") -> str:
    """A complete HTML document around explorer fragments (for tests and saving to disk)."""
    body = "\n".join(fragments)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n")


def display_static_explorer(**kwargs) -> None:
    """Display :func:`static_explorer_html` in a notebook cell (``text/html`` output).

    Parameters
    ----------
    **kwargs
        Passed to :func:`static_explorer_html`.
    """
    from IPython.display import HTML, display

    display(HTML(static_explorer_html(**kwargs)))
