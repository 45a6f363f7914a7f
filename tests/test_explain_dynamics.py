"""The effective logit gradient of the LiLAW loss and the meta-drift helpers (book chapter 04).

Oracle: torch.autograd through softmax → weight_components → cross-entropy, and through
the LiLAW module itself, in float64.
"""
import math

import pytest
import torch

from lilaw_edu.core.weighting import LiLAW, weight_components
from lilaw_edu.explain import dynamics, theory

SETTINGS = [(10.0, 2.0, 6.0), (9.0, 3.0, 7.0), (1.5, 4.0, 4.0), (3.0, 0.5, 0.8)]


def _autograd_logit_grad(probs, targets, setting, detach):
    z = probs.log().clone().requires_grad_(True)
    s = torch.softmax(z, dim=1)
    w = sum(weight_components(s.detach() if detach else s, targets, *setting))
    loss = w * torch.nn.functional.cross_entropy(z, targets, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), z)
    return grad


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("num_classes", [2, 3, 10])
def test_logit_gradient_matches_autograd(setting, detach, num_classes):
    probs, targets = theory.sample_probs(2000, num_classes, generator=torch.Generator().manual_seed(num_classes),
                                         max_scale=6.0)
    closed = dynamics.logit_gradient(probs, targets, *setting, detach_weights=detach)
    auto = _autograd_logit_grad(probs, targets, setting, detach)
    assert torch.allclose(closed, auto, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("detach", [False, True])
def test_multiplier_matches_the_lilaw_module(detach):
    probs, targets = theory.sample_probs(500, 5, generator=torch.Generator().manual_seed(7), max_scale=6.0)
    z = probs.log().clone().requires_grad_(True)
    LiLAW(detach_weights=detach).double()(z, targets).backward()  # batch mean
    z_base = probs.log().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(z_base, targets).backward()
    rows = torch.arange(len(targets))
    module_ratio = z.grad[rows, targets] / z_base.grad[rows, targets]
    mult = dynamics.gradient_multiplier(probs, targets, 10.0, 2.0, 6.0, detach_weights=detach)
    assert torch.allclose(mult, module_ratio, rtol=1e-9)


def test_detached_multiplier_is_the_weight():
    probs, targets = theory.sample_probs(300, 4, generator=torch.Generator().manual_seed(3))
    w = sum(weight_components(probs, targets, 10.0, 2.0, 6.0))
    assert torch.allclose(dynamics.gradient_multiplier(probs, targets, 10.0, 2.0, 6.0, detach_weights=True), w)


def test_table5_multipliers_as_quoted_in_issue_14():
    rows = dynamics.table5_multipliers()
    assert [round(r["default"], 2) for r in rows] == [1.29, 1.47, 2.68, 1.05]
    assert [round(r["detached"], 2) for r in rows] == [1.28, 1.36, 1.62, 1.90]
    # under the default the confidently wrong case is amplified least, with detached weights most
    assert min(rows, key=lambda r: r["default"])["case"] == "incorrect & confident"
    assert max(rows, key=lambda r: r["detached"])["case"] == "incorrect & confident"


@pytest.mark.parametrize("name", ["alpha", "beta", "delta"])
def test_meta_gradient_ceiling_holds_and_is_attained(name):
    """Per-sample |∂(W_p·CE)/∂p| never exceeds the ceiling; it is reached where the proof says."""
    probs, targets = theory.sample_probs(150, 10, generator=torch.Generator().manual_seed(11))
    e = math.e  # the maximiser: s_y = m = 1/e on the diagonal, with x_p = 0 (alpha, beta) or 1 (delta)
    rest = (1 - 1 / e) / 9 * torch.ones(9, dtype=torch.float64)
    probs = torch.cat([probs, torch.cat([torch.tensor([1 / e], dtype=torch.float64), rest])[None]])
    targets = torch.cat([targets, torch.zeros(1, dtype=torch.int64)])
    ce = -probs.gather(1, targets[:, None]).squeeze(1).log()
    values = [0.5, 1.0, 2.0, 6.0, 10.0, 20.0] + [e + 1 if name == "delta" else 1.0]
    worst = 0.0
    for k in values:
        p = torch.tensor(k, dtype=torch.float64, requires_grad=True)
        params = {"alpha": (p, 2.0, 6.0), "beta": (10.0, p, 6.0), "delta": (10.0, 2.0, p)}[name]
        per_sample = weight_components(probs, targets, *params)["abd".index(name[0])] * ce
        for v in per_sample:
            worst = max(worst, abs(float(torch.autograd.grad(v, p, retain_graph=True)[0])))
    assert worst == pytest.approx(dynamics.META_GRADIENT_CEILING[name], rel=1e-9)


def test_paper_meta_steps():
    assert dynamics.paper_meta_steps() == 9 * math.ceil(42_500 / 16) == 23_913
    with pytest.raises(ValueError, match="val_fraction"):
        dynamics.paper_meta_steps(val_fraction=1.5)


def test_drift_per_meta_step():
    hist = [dict(epoch=1, alpha=10.0, beta=2.0, delta=6.0), dict(epoch=2, alpha=9.0, beta=2.5, delta=6.0),
            dict(epoch=3, alpha=8.0, beta=3.0, delta=6.5)]
    rate = dynamics.drift_per_meta_step(hist, n_train=100, batch_size=32)  # 4 steps per epoch
    assert rate["steps"] == 8
    assert rate["alpha"] == pytest.approx(-2.0 / 8) and rate["beta"] == pytest.approx(1.0 / 8)
    with pytest.raises(ValueError, match="history"):
        dynamics.drift_per_meta_step(hist[:1], 100, 32)
