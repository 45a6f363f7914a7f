"""Tests of lilaw_edu.explain.theory: Table 5, the weight bounds, the region and the closed-form gradients."""
import math

import numpy as np
import pytest
import torch

from lilaw_edu.explain import theory
from lilaw_edu.core.weighting import weight_components


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_weights(s_y, m, alpha, beta, delta):
    """Independent NumPy oracle for eqs. 2-4."""
    return (np_sigmoid(alpha * s_y - m), np_sigmoid(-(beta * s_y - m)), np.exp(-((delta * s_y - m) ** 2) / 2))


def np_random_probs(rng, n, c):
    """Softmax of Gaussian logits with a random per-row scale; half the labels are the arg-max."""
    logits = rng.standard_normal((n, c)) * rng.uniform(0, 15, size=(n, 1))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, c, size=n)
    y[::2] = p[::2].argmax(axis=1)
    return p, y


# ------------------------------------------------------------------ Table 5
@pytest.mark.parametrize("setting", theory.TABLE5_SETTINGS)
def test_table5_recomputed_matches_numpy(setting):
    rows = [r for r in theory.table5_recomputed([setting])]
    assert len(rows) == 4
    for row, (case, pred) in zip(rows, theory.TABLE5_CASES):
        s_y, m = pred[0], max(pred)
        w_a, w_b, w_d = np_weights(s_y, m, *setting)
        ce = -math.log(pred[0])
        assert row["case"] == case
        assert row["s_y"] == pytest.approx(s_y) and row["m"] == pytest.approx(m)
        assert row["ce"] == pytest.approx(ce, rel=1e-12)
        assert row["w_alpha"] == pytest.approx(w_a, rel=1e-12)
        assert row["w_beta"] == pytest.approx(w_b, rel=1e-12)
        assert row["w_delta"] == pytest.approx(w_d, rel=1e-9, abs=1e-15)
        assert row["w"] == pytest.approx(w_a + w_b + w_d, rel=1e-12)
        assert row["loss"] == pytest.approx((w_a + w_b + w_d) * ce, rel=1e-12)


def test_table5_hand_values():
    # correct & confident at (10, 2, 6): W_beta = sigmoid(-(1.9 - 0.95)) = sigmoid(-0.95)
    row = theory.table5_recomputed([(10.0, 2.0, 6.0)])[0]
    assert row["w_beta"] == pytest.approx(1 / (1 + math.exp(0.95)), rel=1e-12)
    assert row["w_delta"] == pytest.approx(math.exp(-(4.75 ** 2) / 2), rel=1e-9)


def test_table5_comparison_second_setting_agrees_first_does_not():
    comp = theory.table5_comparison()
    assert len(comp) == 2 * 4 * len(theory.TABLE5_QUANTITIES)
    weights = ("w_alpha", "w_beta", "w_delta")
    second = [r for r in comp if r["setting"] == (9.0, 3.0, 7.0) and r["quantity"] in weights]
    assert all(r["agrees"] for r in second)
    first = [r for r in comp if r["setting"] == (10.0, 2.0, 6.0) and r["quantity"] in weights]
    # all 12 printed weights of the first setting disagree with eqs. 2-4 (correct & confident
    # W_alpha only by its last digit: 0.9998 is printed 0.999); 10 of them by more than 0.01
    assert sum(not r["agrees"] for r in first) == 12
    assert sum(abs(r["diff"]) > 0.01 for r in first) == 10
    ce = [r for r in comp if r["quantity"] == "ce"]
    assert all(r["agrees"] for r in ce)


def test_printed_first_setting_violates_paper_bounds():
    printed = theory.TABLE5_PRINTED[(10.0, 2.0, 6.0)]["incorrect & confident"]
    bounds = theory.paper_bounds(10.0, 2.0)
    assert printed["w_alpha"] < bounds["w_alpha"][0]   # 0.222 < sigmoid(-1)
    assert printed["w_beta"] > bounds["w_beta"][1]     # 0.812 > sigmoid(1)


def test_formula_search_positive_control():
    hits = theory.table5_formula_search((9.0, 3.0, 7.0))
    cols = {c for c, _, _ in hits}
    assert cols == {"w_alpha", "w_beta", "w_delta"}
    assert ("w_beta", "sigmoid(1*m - 3*s_y)", 4) in hits
    assert theory.table5_formula_search((10.0, 2.0, 6.0)) == []


# ------------------------------------------------------------------ region and bounds
@pytest.mark.parametrize("c", [2, 3, 10, 100])
def test_region_vertices_are_attainable(c):
    for s_y, m in theory.region_vertices(c):
        # build a probability vector with label prob s_y and max m
        rest = 1 - s_y - (0 if s_y == m else m)
        k = c - 1 if s_y == m else c - 2
        others = [rest / k] * k if k else []
        vec = [s_y] + ([] if s_y == m else [m]) + others
        assert len(vec) == c and abs(sum(vec) - 1) < 1e-12
        assert max(vec) == pytest.approx(m) and min(vec) >= -1e-12


@pytest.mark.parametrize("c", [2, 3, 10, 100])
@pytest.mark.parametrize("params", [(10.0, 2.0, 6.0), (9.0, 3.0, 7.0), (1.0, 1.0, 1.0), (3.0, 5.0, 5.0)])
def test_bounds_hold_on_random_probabilities(c, params):
    rng = np.random.default_rng(1000 * c + int(sum(params)))
    p, y = np_random_probs(rng, 100_000, c)
    s_y, m = p[np.arange(len(y)), y], p.max(axis=1)
    w = dict(zip(("w_alpha", "w_beta", "w_delta"), np_weights(s_y, m, *params)))
    alpha, beta, delta = params
    paper = theory.paper_bounds(alpha, beta)
    exact = theory.exact_bounds(alpha, beta, delta, c)
    eps = 1e-12
    # eq. 9, eq. 12 and 0 < W_delta <= 1
    assert w["w_alpha"].min() >= paper["w_alpha"][0] - eps and w["w_alpha"].max() <= paper["w_alpha"][1] + eps
    assert w["w_beta"].min() >= paper["w_beta"][0] - eps and w["w_beta"].max() <= paper["w_beta"][1] + eps
    assert w["w_delta"].min() > 0 and w["w_delta"].max() <= 1 + eps
    for key, (lo, hi) in exact.items():
        assert w[key].min() >= lo - eps and w[key].max() <= hi + eps
    # the alpha and beta bounds are tight: sampled extremes come close (they are limits)
    assert w["w_alpha"].min() < paper["w_alpha"][0] + 0.01
    assert w["w_alpha"].max() > paper["w_alpha"][1] - 0.01
    assert w["w_beta"].min() < paper["w_beta"][0] + 0.01
    assert w["w_beta"].max() > paper["w_beta"][1] - 0.01


def test_eq9_fails_below_alpha_one():
    # with alpha < 1 the uniform prediction beats the printed upper bound sigmoid(alpha - 1)
    c, alpha = 10, 0.5
    s = np.full(c, 1 / c)
    w_a = np_sigmoid(alpha * s[0] - s.max())
    assert w_a > theory.paper_bounds(alpha, 2.0)["w_alpha"][1]
    assert theory.exact_bounds(alpha, 2.0, 6.0, c)["w_alpha"][1] == pytest.approx(w_a)


@pytest.mark.parametrize("coef", [0.3, 1.0, 2.0, 6.0])
@pytest.mark.parametrize("c", [2, 3, 10])
def test_argument_range_matches_dense_search(coef, c):
    rng = np.random.default_rng(c)
    p = rng.dirichlet(np.full(c, 0.2), size=200_000)
    y = rng.integers(0, c, size=len(p))
    x = coef * p[np.arange(len(p)), y] - p.max(axis=1)
    lo, hi = theory.argument_range(coef, c)
    assert x.min() >= lo - 1e-12 and x.max() <= hi + 1e-12
    assert x.min() < lo + 0.05 and x.max() > hi - 0.05


def test_region_vertices_limit_and_errors():
    v = theory.region_vertices(None)
    assert v[0].tolist() == [0.0, 0.0] and v[1].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="num_classes"):
        theory.region_vertices(1)


def test_sample_probs_covers_region():
    g = torch.Generator().manual_seed(0)
    probs, targets = theory.sample_probs(10_000, 5, generator=g)
    assert probs.shape == (10_000, 5) and targets.shape == (10_000,)
    assert torch.allclose(probs.sum(1), torch.ones(10_000, dtype=torch.float64))
    correct = probs.argmax(1) == targets
    assert 0.5 <= correct.double().mean() < 0.75
    assert probs.max(1).values.max() > 0.999 and probs.max(1).values.min() < 0.3


# ------------------------------------------------------------------ gradients (appendix A.2)
@pytest.mark.parametrize("params", [(10.0, 2.0, 6.0), (1.5, 4.0, 4.0), (3.0, 0.5, 0.8)])
@pytest.mark.parametrize("active", ["abd", "a", "bd"])
def test_meta_gradients_match_autograd(params, active):
    g = torch.Generator().manual_seed(7)
    probs, targets = theory.sample_probs(512, 10, generator=g)
    losses = -probs.gather(1, targets[:, None]).squeeze(1).log()
    a, b, d = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in params)
    parts = dict(zip("abd", weight_components(probs, targets, a, b, d)))
    w = sum(parts[k] for k in active)
    (w * losses).mean().backward()
    closed = theory.meta_gradients(probs, targets, losses, *params, active=active)
    for key, t in zip(("alpha", "beta", "delta"), (a, b, d)):
        auto = 0.0 if t.grad is None else float(t.grad)
        assert closed[key] == pytest.approx(auto, rel=1e-10, abs=1e-14)
    assert closed["alpha"] >= 0 and closed["beta"] <= 0


def test_printed_delta_line_is_wrong_but_last_line_is_right():
    s_y = torch.tensor([0.3, 0.05, 0.6], dtype=torch.float64)
    m = torch.tensor([0.6, 0.95, 0.6], dtype=torch.float64)
    delta = torch.tensor(6.0, dtype=torch.float64, requires_grad=True)
    w_d = torch.exp(-((delta * s_y - m) ** 2) / 2)
    auto = torch.autograd.grad(w_d.sum(), delta)[0]
    x = 6.0 * s_y - m
    last_line = -w_d.detach() * x * s_y
    assert torch.allclose(last_line.sum(), auto)
    printed = theory.printed_delta_derivative(s_y, m, 6.0)
    assert torch.allclose(printed * w_d.detach() ** 2, last_line)
    assert not torch.allclose(printed.sum(), auto)


def test_sigmoid_derivative_identity():
    x = torch.linspace(-8, 8, 101, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.sigmoid(x).sum(), x)
    xd = x.detach()
    assert torch.allclose(grad, torch.sigmoid(xd) ** 2 * torch.exp(-xd))


def test_expected_changed_fraction():
    assert theory.expected_changed_fraction(0.5, 10) == pytest.approx(0.45)
    assert theory.expected_changed_fraction(0.3, 2) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="rate"):
        theory.expected_changed_fraction(1.5, 10)
    with pytest.raises(ValueError, match="num_classes"):
        theory.expected_changed_fraction(0.5, 1)
