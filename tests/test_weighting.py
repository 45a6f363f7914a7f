"""LiLAW weights, gradients, bounds and meta step against independent computations."""
import math

import numpy as np
import pytest
import torch

from lilaw_edu import LiLAW, lilaw_weights, per_sample_loss, weight_components


def random_probs(n, c, seed, concentration=0.3):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(c, concentration), size=n)
    y = rng.integers(0, c, size=n)
    return torch.tensor(p, dtype=torch.float64), torch.tensor(y, dtype=torch.long)


def numpy_weights(p, y, a, b, d):
    """Independent NumPy implementation of paper eqs. 2-4."""
    p = p.numpy()
    s = p[np.arange(len(y)), y.numpy()]
    m = p.max(axis=1)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    return sig(a * s - m), sig(-(b * s - m)), np.exp(-((d * s - m) ** 2) / 2)


@pytest.mark.parametrize("c", [2, 5, 100])
@pytest.mark.parametrize("abd", [(10.0, 2.0, 6.0), (9.0, 3.0, 7.0), (1.0, 0.5, 0.5)])
def test_weights_match_numpy(c, abd):
    p, y = random_probs(2000, c, seed=c)
    ours = weight_components(p, y, *abd)
    ref = numpy_weights(p, y, *abd)
    for o, r in zip(ours, ref):
        assert o.shape == (2000,)
        np.testing.assert_allclose(o.numpy(), r, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lilaw_weights(p, y, *abd).numpy(), sum(ref), rtol=1e-12)


def test_table5_rows_by_hand():
    # Rows of paper Table 5 (label 0), computed here with the math module only.
    rows = [(0.95, 0.05), (0.60, 0.40), (0.40, 0.60), (0.05, 0.95)]
    p = torch.tensor(rows, dtype=torch.float64)
    y = torch.zeros(4, dtype=torch.long)
    sig = lambda x: 1 / (1 + math.exp(-x))
    for a, b, d in [(10, 2, 6), (9, 3, 7)]:
        wa, wb, wd = weight_components(p, y, float(a), float(b), float(d))
        for i, (s, _) in enumerate(rows):
            m = max(rows[i])
            assert wa[i].item() == pytest.approx(sig(a * s - m), abs=1e-12)
            assert wb[i].item() == pytest.approx(sig(-(b * s - m)), abs=1e-12)
            assert wd[i].item() == pytest.approx(math.exp(-((d * s - m) ** 2) / 2), abs=1e-12)
    # The second printed setting (alpha, beta, delta = 9, 3, 7) agrees with eqs. 2-4 to 3 decimals.
    wa, wb, wd = weight_components(p, y, 9.0, 3.0, 7.0)
    printed = {"wa": [0.999, 0.992, 0.953, 0.378], "wd": [0.000, 0.002, 0.089, 0.835],
               "wb": [0.130, 0.231, 0.354, 0.690]}
    for name, ours in (("wa", wa), ("wb", wb), ("wd", wd)):
        np.testing.assert_allclose(ours.numpy(), printed[name], atol=6e-4)


def closed_form_grads(p, y, a, b, d, loss):
    """Appendix A.2, corrected: d/dx sigma(x) = sigma(x)(1 - sigma(x)) = sigma(x)^2 e^{-x}."""
    s = p[torch.arange(len(y)), y]
    m = p.max(dim=1).values
    za, zb, zd = a * s - m, b * s - m, d * s - m
    wa, wb, wd = torch.sigmoid(za), torch.sigmoid(-zb), torch.exp(-zd ** 2 / 2)
    ga = loss * wa ** 2 * s * torch.exp(-za)      # printed form, correct
    gb = -loss * wb ** 2 * s * torch.exp(zb)      # printed form, correct
    gd = -loss * wd * zd * s                      # last printed line; the middle line divides by exp(...) by mistake
    return ga.mean(), gb.mean(), gd.mean()


@pytest.mark.parametrize("c", [2, 10])
def test_meta_gradients_match_appendix_a2(c):
    torch.manual_seed(c)
    logits = torch.randn(512, c, dtype=torch.float64) * 3
    y = torch.randint(0, c, (512,))
    lilaw = LiLAW(alpha=4.0, beta=3.0, delta=5.0, constraints=False).double()
    loss = lilaw.meta_loss(logits, y)
    ga, gb, gd = torch.autograd.grad(loss, [lilaw.alpha, lilaw.beta, lilaw.delta])
    p = torch.softmax(logits, 1)
    ce = per_sample_loss(logits, y)
    ra, rb, rd = closed_form_grads(p, y, 4.0, 3.0, 5.0, ce)
    for got, want in ((ga, ra), (gb, rb), (gd, rd)):
        assert got.item() == pytest.approx(want.item(), rel=1e-10, abs=1e-14)
    assert ga.item() >= 0 and gb.item() <= 0


@pytest.mark.parametrize("c", [2, 3, 10, 100])
@pytest.mark.parametrize("abd", [(10.0, 2.0, 6.0), (1.0, 1.0, 1.0), (3.5, 1.5, 8.0)])
def test_bounds_eq9_eq12(c, abd):
    a, b, d = abd
    p, y = random_probs(100_000, c, seed=7 * c, concentration=0.2)
    wa, wb, wd = weight_components(p, y, a, b, d)
    sig = lambda x: 1 / (1 + math.exp(-x))
    eps = 1e-12
    assert wa.min() >= sig(-1) - eps and wa.max() <= sig(a - 1) + eps        # eq. 9
    assert wb.min() >= sig(1 - b) - eps and wb.max() <= sig(1) + eps         # eq. 12
    assert wd.min() > 0 and wd.max() <= 1 + eps                              # eq. 13
    w = wa + wb + wd
    assert w.min() > 0 and w.max() < 3


def test_gradients_flow_to_tensor_parameters():
    p, y = random_probs(16, 4, seed=0)
    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    lilaw_weights(p, y, a, 2.0, 3.0).sum().backward()
    assert a.grad is not None and a.grad.item() > 0


def test_ablation_drops_inactive_terms():
    p, y = random_probs(64, 3, seed=1)
    wa, wb, wd = weight_components(p, y, 10.0, 2.0, 6.0)
    torch.testing.assert_close(lilaw_weights(p, y, 10.0, 2.0, 6.0, active="ad"), wa + wd)
    torch.testing.assert_close(lilaw_weights(p, y, 10.0, 2.0, 6.0, active=["beta"]), wb)
    with pytest.raises(ValueError, match="active"):
        lilaw_weights(p, y, 10.0, 2.0, 6.0, active="")
    with pytest.raises(ValueError, match="active"):
        lilaw_weights(p, y, 10.0, 2.0, 6.0, active="xyz")


def make_model_and_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    x = torch.randn(32, 6, generator=g)
    y = torch.randint(0, 4, (32,), generator=g)
    return model, x, y


def test_meta_step_signs_and_untouched_model():
    model, x, y = make_model_and_batch()
    lilaw = LiLAW(meta_wd=0.0, constraints=False)
    # a training step leaves .grad on the model; the meta step must not change it
    lilaw(model(x), y).backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    s0 = lilaw.state()
    with torch.no_grad():
        val_logits = model.eval()(x)
    model.train()
    s1 = lilaw.meta_step(val_logits, y)
    assert s1["alpha"] < s0["alpha"] and s1["beta"] > s0["beta"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, p in model.named_parameters():
        assert torch.equal(p.grad, grads[k]), k
    assert lilaw.alpha.grad is None  # grads are taken functionally, nothing accumulates


def test_meta_step_is_plain_sgd_with_weight_decay():
    model, x, y = make_model_and_batch(1)
    with torch.no_grad():
        logits = model(x)
    lilaw = LiLAW(alpha=3.0, beta=2.0, delta=4.0, meta_lr=0.1, meta_wd=0.5, constraints=False)
    g = torch.autograd.grad(lilaw.meta_loss(logits, y), [lilaw.alpha, lilaw.beta, lilaw.delta])
    lilaw.meta_step(logits, y)
    for name, p0, gi in zip(("alpha", "beta", "delta"), (3.0, 2.0, 4.0), g):
        assert lilaw.state()[name] == pytest.approx(p0 - 0.1 * (gi.item() + 0.5 * p0), rel=1e-6)


def test_constraints_hold_after_every_step():
    torch.manual_seed(0)
    lilaw = LiLAW(alpha=1.2, beta=5.0, delta=5.2, meta_lr=5.0)
    assert lilaw.state()["delta"] >= lilaw.state()["beta"]
    for _ in range(50):
        logits = torch.randn(64, 5) * 4
        y = torch.randint(0, 5, (64,))
        s = lilaw.meta_step(logits, y)
        assert s["alpha"] >= 1.0 and s["delta"] >= s["beta"]
    # constructor applies them too
    s = LiLAW(alpha=0.1, beta=3.0, delta=1.0).state()
    assert s["alpha"] == 1.0 and s["delta"] == 3.0


def test_inactive_parameter_is_not_updated():
    logits, y = torch.randn(32, 3), torch.randint(0, 3, (32,))
    lilaw = LiLAW(active="ab", constraints=False)
    s = lilaw.meta_step(logits, y)
    assert s["delta"] == 6.0 and s["alpha"] != 10.0


def test_detach_option_changes_model_gradient():
    model, x, y = make_model_and_batch(2)
    grads = []
    for detach in (False, True):
        model.zero_grad()
        LiLAW(detach_weights=detach)(model(x), y).backward()
        grads.append(model[-1].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])
    # detached: gradient equals that of sum(W_const * CE) / N
    model.zero_grad()
    logits = model(x)
    w = LiLAW().weights(logits, y)["w"]
    (w * per_sample_loss(logits, y)).mean().backward()
    torch.testing.assert_close(model[-1].weight.grad, grads[1])


def test_training_loss_does_not_touch_lilaw_parameters():
    model, x, y = make_model_and_batch(3)
    lilaw = LiLAW()
    lilaw(model(x), y).backward()
    assert lilaw.alpha.grad is None and lilaw.beta.grad is None and lilaw.delta.grad is None


@pytest.mark.parametrize("loss", ["focal", "gce", "sce"])
def test_other_losses(loss):
    logits, y = torch.randn(20, 4, dtype=torch.float64), torch.randint(0, 4, (20,))
    p = torch.softmax(logits, 1)[torch.arange(20), y]
    got = per_sample_loss(logits, y, loss, gamma=2.0, q=0.7)
    want = {"focal": -(1 - p) ** 2 * torch.log(p), "gce": (1 - p ** 0.7) / 0.7,
            "sce": 0.1 * -torch.log(p) + 1.0 * -math.log(1e-4) * (1 - p)}[loss]
    torch.testing.assert_close(got, want)
    assert per_sample_loss(logits, y, "focal", gamma=0.0).allclose(per_sample_loss(logits, y, "ce"))


@pytest.mark.parametrize("bad, match", [
    (lambda p, y: (p.log(), y), "probs"),                 # logits-like input
    (lambda p, y: (p * 2, y), "sum to 1"),
    (lambda p, y: (p[:0], y[:0]), "empty"),
    (lambda p, y: (p, y.float()), "targets"),
    (lambda p, y: (p, y + 10), "targets must lie"),
    (lambda p, y: (torch.full_like(p, float("nan")), y), "finite"),
    (lambda p, y: (p[0], y), r"shape \(N, C\)"),
])
def test_bad_input_messages(bad, match):
    p, y = random_probs(8, 3, seed=0)
    with pytest.raises((ValueError, TypeError), match=match):
        weight_components(*bad(p, y), 10.0, 2.0, 6.0)


def test_bad_scalar_parameters():
    p, y = random_probs(8, 3, seed=0)
    with pytest.raises(ValueError, match="alpha"):
        weight_components(p, y, float("nan"), 2.0, 6.0)
    with pytest.raises(ValueError, match="beta"):
        weight_components(p, y, 1.0, torch.ones(2), 6.0)
    with pytest.raises(TypeError, match="delta"):
        weight_components(p, y, 1.0, 2.0, "6")
    with pytest.raises(ValueError, match="loss"):
        LiLAW(loss="mse")


@pytest.mark.parametrize("c", [2, 10])
def test_eq12_lower_bound_needs_beta_at_least_one(c):
    """Printed eq. 12 claims W_beta >= sigma(1 - beta) for every beta; it fails for beta < 1.

    With s_y = m (label is the argmax), beta*s_y - m = (beta - 1) m, which for beta < 1 is
    largest at the smallest feasible m = 1/C, so the tight lower bound is sigma((1 - beta)/C).
    """
    beta = 0.5
    p, y = random_probs(100_000, c, seed=11, concentration=0.2)
    y = p.argmax(1)  # put every sample on the diagonal s_y = m
    wb = weight_components(p, y, 10.0, beta, 6.0)[1]
    sig = lambda x: 1 / (1 + math.exp(-x))
    assert wb.min() < sig(1 - beta)                     # the printed bound is violated
    assert wb.min() >= sig((1 - beta) / c) - 1e-12      # the corrected bound holds


def test_meta_step_without_sync_returns_tensors_and_same_update():
    logits, y = torch.randn(32, 3), torch.randint(0, 3, (32,))
    a, b = LiLAW(), LiLAW()
    floats = a.meta_step(logits, y)
    tensors = b.meta_step(logits, y, sync=False)
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in tensors.values())
    assert {k: float(v) for k, v in tensors.items()} == floats
