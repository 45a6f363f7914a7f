"""Tests of lilaw_edu.explain.explorer: the difficulty region, the numbers, the widget and the static HTML."""
import json
from importlib import resources
import re

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

import lilaw_edu
from lilaw_edu.explain import explorer as ex, region, static


def numpy_oracle(s, m, a, b, d):
    """Paper eqs. 2-6 written out independently (CE = -log s_y)."""
    s, m = np.asarray(s, float), np.asarray(m, float)
    wa = 1 / (1 + np.exp(-(a * s - m)))
    wb = 1 / (1 + np.exp(b * s - m))
    wd = np.exp(-((d * s - m) ** 2) / 2)
    w = wa + wb + wd
    return {"w_alpha": wa, "w_beta": wb, "w_delta": wd, "w": w, "ce": -np.log(s), "wce": -w * np.log(s)}


def sample_softmax_pairs(num_classes, n, seed):
    """(s_y, max s) of many random probability vectors from several families.

    Dirichlet with per-class concentrations spanning six decades (near-vertices, two-hot
    mixtures, near-uniform, label mass ~0 with the rest uniform) plus softmax of
    Gaussian logits with a random scale and a random shift of the label's logit.
    """
    rng = np.random.default_rng(seed)
    half = n // 2
    conc = 10 ** rng.uniform(-2, 2, size=(half, 1)) * np.ones((half, num_classes))
    conc[:, 0] *= 10 ** rng.uniform(-3, 1, size=half)           # the label's own concentration
    mixed = rng.random(half) < 0.3
    conc[mixed] = 10 ** rng.uniform(-3, 3, size=(mixed.sum(), num_classes))
    g = rng.gamma(conc)
    g = g[g.sum(1) > 0]
    dirichlet = g / g.sum(1, keepdims=True)
    logits = rng.standard_normal((n - half, num_classes)) * 10 ** rng.uniform(-2, 2, size=(n - half, 1))
    logits[:, 0] += rng.uniform(-20, 20, size=n - half)
    probs = np.concatenate([dirichlet, torch.softmax(torch.as_tensor(logits), 1).numpy()])
    return probs[:, 0], probs.max(1)  # class 0 is the label


@pytest.mark.parametrize("num_classes", [2, 3, 10])
def test_feasible_mask_against_sampled_softmax_vectors(num_classes):
    s, m = sample_softmax_pairs(num_classes, 200_000, seed=num_classes)
    inside = region.feasible_mask(s, m, num_classes, atol=1e-9)
    assert inside.all(), f"{(~inside).sum()} sampled pairs outside, e.g. {s[~inside][:3]}, {m[~inside][:3]}"
    # Every node the mask accepts is near some sample (coverage up to grid resolution).
    n = 41
    h = 1 / (n - 1)
    axis = region.grid_axis(n)
    gs, gm = np.meshgrid(axis, axis)
    mask = region.feasible_mask(gs, gm, num_classes)
    dist, _ = cKDTree(np.c_[s, m]).query(np.c_[gs[mask], gm[mask]])
    assert mask.sum() >= n  # the region is not empty (for C=2: two segments)
    assert dist.max() <= 1.5 * h, f"mask node {np.c_[gs[mask], gm[mask]][dist.argmax()]} has no sample within {dist.max():.3f}"
    # And nodes the mask rejects are farther than a cell from every sample (it is not too small).
    far, _ = cKDTree(np.c_[s, m]).query(np.c_[gs[~mask], gm[~mask]])
    near_outside = far < 1e-3
    assert not near_outside.any(), f"rejected nodes with samples on them: {np.c_[gs[~mask], gm[~mask]][near_outside][:3]}"


@pytest.mark.parametrize("num_classes, point, expected", [
    (10, (0.0, 1 / 9), True), (10, (0.0, 1 / 9 - 0.01), False), (10, (0.5, 0.5), True),
    (10, (0.3, 0.71), False), (10, (0.6, 0.6), True), (10, (0.6, 0.61), False), (10, (0.05, 0.05), False),
    (10, (0.1, 0.1), True), (10, (0.0, 1.0), True), (10, (1.0, 1.0), True), (10, (0.2, 0.15), False),
    (2, (0.3, 0.7), True), (2, (0.3, 0.6), False), (2, (0.5, 0.5), True), (2, (0.45, 0.45), False),
    (3, (0.0, 0.5), True), (3, (0.0, 0.49), False), (3, (1 / 3, 1 / 3), True), (3, (0.3, 0.3), False),
])
def test_feasible_mask_hand_values(num_classes, point, expected):
    assert bool(region.feasible_mask(*point, num_classes)) is expected


def test_feasible_mask_bad_classes():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        region.feasible_mask(0.5, 0.5, 1)


@pytest.mark.parametrize("num_classes", [2, 3, 10, 100])
def test_realize_probs_attains_every_feasible_node(num_classes):
    axis = region.grid_axis(51)
    gs, gm = np.meshgrid(axis, axis)
    mask = region.feasible_mask(gs, gm, num_classes)
    probs, targets = region.realize_probs(gs[mask], gm[mask], num_classes)
    assert probs.shape == (mask.sum(), num_classes)
    assert (probs >= 0).all() and torch.allclose(probs.sum(1), torch.ones(len(probs), dtype=probs.dtype), atol=1e-12)
    s_y, m = lilaw_edu.label_and_max_prob(probs, targets)
    np.testing.assert_allclose(s_y.numpy(), gs[mask], atol=1e-12)
    np.testing.assert_allclose(m.numpy(), gm[mask], atol=1e-12)


def test_realize_probs_rejects_unattainable_pair():
    with pytest.raises(ValueError, match=r"attainable with C=10 classes, got \(0.3, 0.8\)"):
        region.realize_probs([0.1, 0.3], [0.5, 0.8], 10)


def test_values_at_matches_numpy_oracle():
    rng = np.random.default_rng(0)
    s, m = sample_softmax_pairs(7, 2000, seed=1)
    keep = s > 1e-6
    for a, b, d in [(10.0, 2.0, 6.0), (1.0, 1.0, 1.0), (rng.uniform(0, 20), rng.uniform(0, 10), rng.uniform(0, 15))]:
        got = region.values_at(s[keep], m[keep], a, b, d, 7)
        want = numpy_oracle(s[keep], m[keep], a, b, d)
        for key in region.VALUE_KEYS:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_surfaces_nan_exactly_outside_region():
    n, c = 61, 4
    grids = region.surfaces(10.0, 2.0, 6.0, c, n)
    axis = region.grid_axis(n)
    gs, gm = np.meshgrid(axis, axis)
    mask = region.feasible_mask(gs, gm, c)
    for key, grid in grids.items():
        assert grid.shape == (n, n)
        assert np.isnan(grid[~mask]).all()
        assert not np.isnan(grid[mask]).any()
    want = numpy_oracle(gs[mask & (gs > 0)], gm[mask & (gs > 0)], 10.0, 2.0, 6.0)
    np.testing.assert_allclose(grids["wce"][mask & (gs > 0)], want["wce"], rtol=1e-9)
    assert np.isinf(grids["ce"][mask & (gs == 0)]).all()  # CE is infinite at s_y = 0


# ------------------------------------------------------------------ static HTML

def embedded_config(page):
    blocks = re.findall(r'<script type="application/json" class="lilaw-ex-config">(.*?)</script>', page, re.S)
    return [json.loads(b) for b in blocks]


def test_static_html_is_self_contained():
    page = static.static_explorer_html(C=10)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I), "external URL in the HTML"
    assert "https://" not in page.lower() and "http://" not in page.lower()
    assert not re.search(r"\s(src|href)\s*=", page, re.I)
    assert "@import" not in page
    js = (resources.files("lilaw_edu.explain") / "assets" / "explorer.js").read_text(encoding="utf-8")
    assert js in page
    assert page.count("<script") == 2 and page.startswith('<div class="lilaw-explorer"')


def test_static_html_reference_values_equal_lilaw_edu():
    page = static.static_explorer_html(C=6, alpha=3.0)
    (config,) = embedded_config(page)
    assert config["C"] == 6 and config["alpha"] == 3.0 and len(config["reference"]) > 20
    for ref in config["reference"]:
        # Independent probability vector: label 0, max on class 1 (or tied), the rest spread unevenly.
        s, m = ref["s"], ref["m"]
        probs = torch.zeros(1, 6, dtype=torch.float64)
        probs[0, 0], rest = s, 1 - s
        if s < m:
            probs[0, 1], rest = m, 1 - s - m
        free = list(range(1 if s == m else 2, 6))
        for k in free:  # fill greedily, each at most m
            probs[0, k] = min(m, rest)
            rest -= probs[0, k].item()
        assert abs(rest) < 1e-12
        wa, wb, wd = lilaw_edu.weight_components(probs, torch.tensor([0]), ref["alpha"], ref["beta"], ref["delta"])
        w = lilaw_edu.lilaw_weights(probs, torch.tensor([0]), ref["alpha"], ref["beta"], ref["delta"])
        for key, value in (("w_alpha", wa), ("w_beta", wb), ("w_delta", wd), ("w", w)):
            assert ref[key] == pytest.approx(value.item(), abs=1e-12), key
        oracle = numpy_oracle(s, m, ref["alpha"], ref["beta"], ref["delta"])
        for key in region.VALUE_KEYS:
            assert ref[key] == pytest.approx(float(oracle[key]), rel=1e-9, abs=1e-12), key
    for s, m, c, inside in config["maskReference"]:
        assert bool(region.feasible_mask(s, m, c)) is inside


def test_two_explorers_have_unique_ids_and_escape_json():
    one, two = static.static_explorer_html(), static.static_explorer_html()
    ids = [re.search(r'id="([^"]+)"', h).group(1) for h in (one, two)]
    assert ids[0] != ids[1]
    assert f'getElementById("{ids[1]}")' in two
    for h in (one, two):
        config_text = re.search(r'class="lilaw-ex-config">(.*?)</script>', h, re.S).group(1)
        assert "</" not in config_text


def test_static_html_bad_input():
    with pytest.raises(ValueError, match=r"attainable with C=3 classes"):
        static.static_explorer_html(reference_points=[(0.1, 0.2, 1.0, 1.0, 1.0)], C=3)
    with pytest.raises(ValueError, match=r"alpha must be in \[0.0, 20.0\]"):
        static.static_explorer_html(alpha=25.0)
    with pytest.raises(ValueError, match="reference s_y must be > 0"):
        static.static_explorer_html(reference_points=[(0.0, 1.0, 1.0, 1.0, 1.0)])


def test_display_static_explorer_emits_html(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    static.display_static_explorer(C=4)
    assert len(shown) == 1 and 'class="lilaw-explorer"' in shown[0].data


# ------------------------------------------------------------------ ipywidgets explorer

def test_widget_slider_updates_images_in_place():
    box = ex.interactive_explorer(C=5, resolution=31)
    e = box.explorer
    assert set(e.sliders) == {"alpha", "beta", "delta", "C"}
    images = {k: im for k, im in e.images.items()}
    before = {k: np.ma.filled(im.get_array(), np.nan).copy() for k, im in images.items()}
    png_before = e.image.value
    e.sliders["alpha"].value = 3.0
    after = {k: np.ma.filled(im.get_array(), np.nan) for k, im in e.images.items()}
    assert all(e.images[k] is images[k] for k in images)  # same artists, data replaced
    assert not np.allclose(before["w_alpha"], after["w_alpha"], equal_nan=True)
    assert not np.allclose(before["wce"], after["wce"], equal_nan=True)
    np.testing.assert_array_equal(before["w_beta"], after["w_beta"])
    assert e.image.value != png_before and e.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_allclose(after["w_alpha"], region.surfaces(3.0, 2.0, 6.0, 5, 31)["w_alpha"], equal_nan=True)
    nan_before = np.isnan(after["w"] if "w" in after else after["w_alpha"]).sum()
    e.sliders["C"].value = 2
    assert np.isnan(np.ma.filled(e.images["w_alpha"].get_array(), np.nan)).sum() > nan_before
    assert len(e.update_times) == 3


def test_explorer_update_time_reports_timings():
    result = ex.explorer_update_time(C=4, resolution=21, repeats=2)
    assert result["count"] == 8 and 0 < result["median_s"] <= result["max_s"]
