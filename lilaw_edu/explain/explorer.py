"""The α/β/δ explorer: LiLAW's weights over the difficulty region, live.

Two front ends share one set of numbers, all computed by :mod:`lilaw_edu.core.weighting`:

* :func:`interactive_explorer` — ipywidgets sliders (Jupyter, Colab) that redraw
  five matplotlib heat maps (W_α, W_β, W_δ, W, W·CE) over the region of attainable
  ``(s_y, max s)`` pairs for ``C`` classes.
* :func:`static_explorer_html` — the same explorer as a self-contained ``<div>``
  with inline JavaScript and ``<canvas>`` panels for the rendered book: no kernel,
  no CDN, works from ``file://``. The page embeds reference values computed here
  at build time and the script checks its own arithmetic against them on load.

The region maths and the values both front ends show live in
:mod:`lilaw_edu.explain.region` (derivation in its docstring); the static HTML front
end lives in :mod:`lilaw_edu.explain.static`. Their public names are
re-exported here, so ``from lilaw_edu.explain.explorer import feasible_mask`` (and the
rest) keeps working.
"""
from __future__ import annotations

import contextlib
import io
import time

import numpy as np
import torch

from lilaw_edu._internal.checks import check_num_classes
from lilaw_edu.explain.region import PANEL_RANGES, PANELS, SLIDERS, check_resolution, panel_range, surfaces

__all__ = ["MPL_TITLES", "WeightExplorer", "interactive_explorer", "explorer_update_time"]

MPL_TITLES = {"w_alpha": r"$W_\alpha=\sigma(\alpha s_y - m)$", "w_beta": r"$W_\beta=\sigma(-(\beta s_y - m))$",
              "w_delta": r"$W_\delta=e^{-(\delta s_y - m)^2/2}$", "w": r"$W=W_\alpha+W_\beta+W_\delta$", "wce": r"$W\cdot$CE$,\ $CE$=-\log s_y$"}


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


class WeightExplorer:
    """ipywidgets front end: sliders for α, β, δ, C and five heat maps.

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

        self.resolution = check_resolution(resolution)
        self.sliders = {name: widgets.FloatSlider(value=float(v), min=lo, max=hi, step=st, description=name,
                                                  continuous_update=True)
                        for name, v, (lo, hi, st) in zip(("alpha", "beta", "delta"), (alpha, beta, delta),
                                                         (SLIDERS[k] for k in ("alpha", "beta", "delta")))}
        lo, hi, st = SLIDERS["C"]
        self.sliders["C"] = widgets.IntSlider(value=check_num_classes(C), min=lo, max=hi, step=st, description="C")
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

        figure = Figure(figsize=(3 * len(PANELS), 3.1), dpi=72, layout="constrained")
        FigureCanvasAgg(figure)
        images, h = {}, 0.5 / (self.resolution - 1)
        for ax, key in zip(figure.subplots(1, len(PANELS)), PANELS):
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
    """Sliders for α, β, δ and C redrawing W_α, W_β, W_δ, W and W·CE over the region.

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
