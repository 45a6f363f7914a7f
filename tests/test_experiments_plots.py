"""The seed-spread figure (paper Fig. 5 / Table 6): one fixed colour per method for bars, dots and legend."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb

from lilaw_edu.experiments.plots import METHOD_STYLE, method_color, plot_seed_spread

TABLE6 = ("baseline", "lilaw", "lilaw-ab", "lilaw-ad", "lilaw-bd", "lilaw-a", "lilaw-b", "lilaw-d")
ROWS = ("digits/none-0", "digits/uniform-0.5")


def _tidy(methods, rows=ROWS, seeds=range(5), skip=()):
    """A tidy table with a different mean per method (the tallest bar is the last method)."""
    rng = np.random.default_rng(0)
    out = []
    for j, method in enumerate(methods):
        for row in rows:
            if (method, row) in skip:
                continue
            for seed in seeds:
                out.append(dict(preset="cpu-table6", row=row, seed=seed, method=method,
                                top1=0.5 + 0.04 * j + 0.01 * rng.standard_normal()))
    return pd.DataFrame(out)


def _colours(ax):
    """method -> (bar colours, dot colours, legend colour) as RGB tuples."""
    bars, dots = {}, {}
    for patch in ax.patches:
        if (patch.get_gid() or "").startswith("bar:"):
            bars.setdefault(patch.get_gid()[4:], set()).add(tuple(np.round(patch.get_facecolor()[:3], 6)))
    for coll in ax.collections:
        if (coll.get_gid() or "").startswith("dots:"):
            dots.setdefault(coll.get_gid()[5:], set()).update(tuple(np.round(c[:3], 6)) for c in coll.get_facecolors())
    legend = ax.get_legend()
    entries = {text.get_text(): tuple(np.round(handle.get_facecolor()[:3], 6))
               for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    return bars, dots, entries


@pytest.mark.parametrize("methods", [TABLE6, tuple(reversed(TABLE6)),
                                     ("baseline", "lilaw", "lilaw-frozen", "lilaw-detached", "baseline-cleanstop",
                                      "gce", "sce")])
def test_seed_spread_bar_dots_legend_share_one_colour_per_method(methods):
    fig, ax = plt.subplots()
    plot_seed_spread(_tidy(methods), "cpu-table6", ROWS, "top1", methods=methods, ax=ax)
    bars, dots, legend = _colours(ax)
    assert set(bars) == set(dots) == set(legend) == set(methods)
    for method in methods:
        want = tuple(np.round(to_rgb(method_color(method)), 6))
        assert bars[method] == {want}, (method, bars[method], want)
        assert dots[method] == {want}, (method, dots[method], want)
        assert legend[method] == want, (method, legend[method], want)
    assert len({legend[m] for m in methods}) == len(methods), "two methods share a colour"
    # the tallest bar is drawn in the colour of the method with the largest mean
    tallest = max((p for p in ax.patches if (p.get_gid() or "").startswith("bar:")), key=lambda p: p.get_height())
    assert tallest.get_gid() == f"bar:{methods[-1]}"
    assert tuple(np.round(tallest.get_facecolor()[:3], 6)) == legend[methods[-1]]
    plt.close(fig)


def test_seed_spread_colour_does_not_depend_on_the_colour_cycle_or_missing_rows():
    """A method without results in the first row still gets its legend entry, in its own colour."""
    fig, ax = plt.subplots()
    ax.set_prop_cycle(color=["red", "green"])
    df = _tidy(("baseline", "lilaw-ab"), skip={("lilaw-ab", ROWS[0])})
    plot_seed_spread(df, "cpu-table6", ROWS, "top1", methods=("baseline", "lilaw-ab"), ax=ax)
    bars, dots, legend = _colours(ax)
    assert legend["lilaw-ab"] == tuple(np.round(to_rgb(METHOD_STYLE["lilaw-ab"]["color"]), 6)) == next(iter(bars["lilaw-ab"]))
    assert dots["baseline"] == {tuple(np.round(to_rgb("tab:gray"), 6))}
    plt.close(fig)


def test_method_colours_are_fixed_and_distinct():
    colours = [to_rgb(s["color"]) for s in METHOD_STYLE.values()]
    assert len(set(colours)) == len(colours), "METHOD_STYLE gives two methods the same colour"
    assert method_color("some-new-method") == method_color("some-new-method")
    with pytest.raises(TypeError, match="method must be a str"):
        method_color(3)


def test_every_sweep_method_has_a_style():
    from lilaw_edu.experiments.presets import SWEEP_PRESETS
    used = {m for p in SWEEP_PRESETS.values() for r in p["rows"] for m in (r.get("methods") or ())}
    assert not used - set(METHOD_STYLE), sorted(used - set(METHOD_STYLE))
