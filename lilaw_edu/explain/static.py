"""The α/β/δ explorer as a self-contained HTML fragment for the rendered book.

:func:`static_explorer_html` returns one ``<div>`` with inline CSS, a JSON
config and the inline script from ``lilaw_edu/explain/assets/explorer.js`` that paints
``<canvas>`` panels: no kernel, no CDN, works from ``file://``. The page embeds
reference values computed here by :mod:`lilaw_edu.explain.region` at build time and the
script checks its own arithmetic against them on load.
"""
from __future__ import annotations

import hashlib
import html
import itertools
import json
from importlib import resources
from typing import Iterable, Optional, Sequence

import numpy as np

from lilaw_edu._internal.checks import check_num_classes
from lilaw_edu.explain.region import PANEL_RANGES, PANELS, SLIDERS, VALUE_KEYS, check_resolution, feasible_mask, values_at

PANEL_TITLES = {"w_alpha": "W_α = σ(α·s_y − m)", "w_beta": "W_β = σ(−(β·s_y − m))",
                "w_delta": "W_δ = exp(−(δ·s_y − m)²/2)", "w": "W = W_α + W_β + W_δ",
                "wce": "W·CE, CE = −log s_y", "ce": "CE = −log s_y"}
CONTROLS = ("alpha", "beta", "delta", "C")
_ids = itertools.count()


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
        ``s``, ``m``, ``C``, ``alpha``, ``beta``, ``delta`` and the keys of
        :func:`lilaw_edu.explain.region.values_at`.
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


def _check_names(what: str, names: Sequence[str], allowed) -> list:
    names = [names] if isinstance(names, str) else list(names)
    bad = [n for n in names if n not in allowed]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(f"{what} must be distinct names out of {sorted(allowed)}, got {names!r}")
    return names


def _static_text(name: str) -> str:
    return resources.files("lilaw_edu.explain").joinpath("assets", name).read_text(encoding="utf-8")


def _json_for_script(obj) -> str:
    # "</" would close the <script> element early.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def static_explorer_html(reference_points: Optional[Iterable[Sequence[float]]] = None, C: int = 10,
                         alpha: float = 10.0, beta: float = 2.0, delta: float = 6.0, resolution: int = 121,
                         explorer_id: Optional[str] = None, panels: Sequence[str] = PANELS,
                         controls: Sequence[str] = CONTROLS) -> str:
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
        Canvas pixels per axis (grid nodes as in :func:`lilaw_edu.explain.region.surfaces`).
    explorer_id : str, optional
        Element id of the root ``<div>``; a unique one is made when omitted, so
        several explorers can share a page.
    panels : sequence of str
        Heat maps to draw, keys of ``lilaw_edu.explain.region.PANEL_RANGES``
        (default the four weight panels; ``("ce",)`` with ``controls=("C",)``
        gives the region widget of the region chapter).
    controls : sequence of str
        Sliders to show, a subset of ``("alpha", "beta", "delta", "C")``.

    Returns
    -------
    str
        One ``<div class="lilaw-explorer">`` with inline CSS, a JSON config
        (slider ranges, colour map, reference values) and the inline script
        from ``lilaw_edu/explain/assets/explorer.js``. No external URL is referenced.
    """
    points = default_reference_points(C) if reference_points is None else list(reference_points)
    for name, value, (lo, hi, _) in (("alpha", alpha, SLIDERS["alpha"]), ("beta", beta, SLIDERS["beta"]),
                                     ("delta", delta, SLIDERS["delta"])):
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}] (the slider range), got {value}")
    panels, controls = _check_names("panels", panels, PANEL_RANGES), _check_names("controls", controls, CONTROLS)
    config = {"C": check_num_classes(C), "alpha": float(alpha), "beta": float(beta), "delta": float(delta),
              "resolution": check_resolution(resolution), "sliders": SLIDERS, "panels": panels, "controls": controls,
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
