"""LiLAW's relatives (issue 11): L2RW, Meta-Weight-Net, confident learning.

Every check compares the package against an independent computation: closed-form
gradients of a linear softmax classifier (float64), finite differences, a hand-written
MW-Net step, and planted label flips.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lilaw_edu.training.methods.l2rw import l2rw_step, l2rw_weights, normalise_weights
from lilaw_edu.training.methods.mwnet import MetaWeightNet, mwnet_step

torch.set_default_dtype(torch.float32)


# ------------------------------------------------------------------ closed forms for a linear softmax model
def _grads_linear(weight, bias, x, y):
    """Per-sample gradients of cross-entropy for logits = x W^T + b: ((N, C, D), (N, C))."""
    p = torch.softmax(x @ weight.T + bias, dim=1)
    r = p - torch.nn.functional.one_hot(y, weight.shape[0]).to(p)
    return r[:, :, None] * x[:, None, :], r


def _ce(weight, bias, x, y):
    return torch.nn.functional.cross_entropy(x @ weight.T + bias, y)


def _problem(seed=0, n=8, m=6, d=3, c=4):
    g = torch.Generator().manual_seed(seed)
    model = nn.Linear(d, c).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(c, d, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(c, generator=g, dtype=torch.float64) * 0.1)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    xv = torch.randn(m, d, generator=g, dtype=torch.float64)
    yv = torch.randint(0, c, (m,), generator=g)
    return model, x, y, xv, yv


def _val_after_virtual_step(model, x, y, xv, yv, eps, eta):
    w, b = model.weight.detach(), model.bias.detach()
    gw, gb = _grads_linear(w, b, x, y)
    w2 = w - eta * (eps[:, None, None] * gw).sum(0)
    b2 = b - eta * (eps[:, None] * gb).sum(0)
    return float(_ce(w2, b2, xv, yv))


# ------------------------------------------------------------------ L2RW
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l2rw_weights_equal_finite_differences(seed):
    model, x, y, xv, yv = _problem(seed)
    eta, h = 0.5, 1e-5
    raw = torch.zeros(len(y), dtype=torch.float64)
    for i in range(len(y)):
        e = torch.zeros(len(y), dtype=torch.float64)
        e[i] = h
        plus = _val_after_virtual_step(model, x, y, xv, yv, e, eta)
        minus = _val_after_virtual_step(model, x, y, xv, yv, -e, eta)
        raw[i] = -(plus - minus) / (2 * h)
    assert (raw > 0).any() and (raw < 0).any()  # some samples clipped, some kept: a real test
    expected = raw.clamp(min=0) / raw.clamp(min=0).sum()
    got = l2rw_weights(model, x, y, xv, yv, lookahead_lr=eta)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)
    assert math.isclose(float(got.sum()), 1.0, rel_tol=1e-12)


def test_l2rw_weights_are_gradient_alignment_and_independent_of_eta():
    model, x, y, xv, yv = _problem(3)
    w, b = model.weight.detach(), model.bias.detach()
    gw, gb = _grads_linear(w, b, x, y)
    vw, vb = (t.mean(0) for t in _grads_linear(w, b, xv, yv))
    align = (gw * vw).sum((1, 2)) + (gb * vb).sum(1)  # grad L_val . grad l_i
    expected = normalise_weights(align)
    for eta in (1e-3, 1.0, 30.0):
        torch.testing.assert_close(l2rw_weights(model, x, y, xv, yv, lookahead_lr=eta), expected,
                                   rtol=1e-9, atol=1e-12)


def test_normalise_weights_all_negative_gives_zero_weights():
    assert torch.equal(normalise_weights(torch.tensor([-1.0, -0.5, 0.0])), torch.zeros(3))
    torch.testing.assert_close(normalise_weights(torch.tensor([-1.0, 1.0, 3.0])), torch.tensor([0.0, 0.25, 0.75]))


def test_l2rw_rejects_bad_lookahead_lr():
    model, x, y, xv, yv = _problem(0)
    with pytest.raises(ValueError, match="lookahead_lr must be > 0, got 0"):
        l2rw_weights(model, x, y, xv, yv, lookahead_lr=0)


def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def test_l2rw_look_ahead_leaves_batch_norm_buffers_and_parameters_alone():
    model = _bn_model().train()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    xv, yv = torch.randn(5, 1, 6, 6, generator=g), torch.randint(0, 3, (5,), generator=g)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    w = l2rw_weights(model, x, y, xv, yv)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert w.shape == (8,) and (w >= 0).all()
    # the real step updates the running statistics exactly once, as a plain forward would
    reference = _bn_model().train()
    reference(x)
    l2rw_step(model, torch.optim.SGD(model.parameters(), lr=0.0), x, y, xv, yv)
    torch.testing.assert_close(model[1].running_mean, reference[1].running_mean)
    assert int(model[1].num_batches_tracked) == 1


def test_l2rw_step_is_weighted_loss_step():
    model, x, y, xv, yv = _problem(4)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    weights = l2rw_weights(model, x, y, xv, yv)
    out = l2rw_step(model, torch.optim.SGD(model.parameters(), lr=0.3), x, y, xv, yv)
    torch.testing.assert_close(out["weights"], weights)
    gw, gb = _grads_linear(w0, b0, x, y)
    torch.testing.assert_close(model.weight.detach(), w0 - 0.3 * (weights[:, None, None] * gw).sum(0))
    torch.testing.assert_close(model.bias.detach(), b0 - 0.3 * (weights[:, None] * gb).sum(0))


# ------------------------------------------------------------------ Meta-Weight-Net
def _vnet_parts(vnet):
    l1, l2 = vnet.net[0], vnet.net[2]
    return l1.weight.detach()[:, 0], l1.bias.detach(), l2.weight.detach()[0], l2.bias.detach()[0]


def _v_and_grads(parts, losses):
    """V(l) = sigmoid(w2 . relu(w1 l + b1) + b2) and dV/d(w1, b1, w2, b2) per sample, by hand."""
    w1, b1, w2, b2 = parts
    a = losses[:, None] * w1 + b1                          # (N, H)
    r = a.clamp(min=0)
    v = torch.sigmoid(r @ w2 + b2)                         # (N,)
    s = v * (1 - v)
    on = (a > 0).to(a)
    return v, (s[:, None] * w2 * on * losses[:, None], s[:, None] * w2 * on, s[:, None] * r, s)


@pytest.mark.parametrize("seed", [0, 1])
def test_mwnet_step_equals_manual_two_step_computation(seed):
    model, x, y, xv, yv = _problem(seed, n=10, m=7)
    torch.manual_seed(seed)
    vnet = MetaWeightNet(hidden=6).double()
    lr_c, lr_v = 0.4, 0.7
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    parts = _vnet_parts(vnet)
    losses = torch.nn.functional.cross_entropy(x @ w.T + b, y, reduction="none")
    gw, gb = _grads_linear(w, b, x, y)
    v, dv = _v_and_grads(parts, losses)
    n = len(y)
    w_hat = w - lr_c * (v[:, None, None] * gw).sum(0) / n          # look-ahead, eta = classifier lr
    b_hat = b - lr_c * (v[:, None] * gb).sum(0) / n
    vw, vb = (t.mean(0) for t in _grads_linear(w_hat, b_hat, xv, yv))
    align = (gw * vw).sum((1, 2)) + (gb * vb).sum(1)                 # dL_val/dtheta_hat . grad l_i
    psi_grads = [-(lr_c / n) * (align.reshape(-1, *([1] * (d.dim() - 1))) * d).sum(0) for d in dv]
    new_parts = [p - lr_v * g for p, g in zip(parts, psi_grads)]
    w_new, _ = _v_and_grads(new_parts, losses)                      # weights by the updated net
    expected_w = w - lr_c * (w_new[:, None, None] * gw).sum(0) / n
    expected_b = b - lr_c * (w_new[:, None] * gb).sum(0) / n

    out = mwnet_step(model, torch.optim.SGD(model.parameters(), lr=lr_c), vnet,
                     torch.optim.SGD(vnet.parameters(), lr=lr_v), x, y, xv, yv)
    for got, want in zip(_vnet_parts(vnet), new_parts):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(out["weights"], w_new, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(model.weight.detach(), expected_w, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(model.bias.detach(), expected_b, rtol=1e-9, atol=1e-12)
    assert math.isclose(float(out["val_loss"]), float(_ce(w_hat, b_hat, xv, yv)), rel_tol=1e-10)
    assert any(float(g.abs().max()) > 1e-6 for g in psi_grads)  # the meta step moved psi


def test_mwnet_rejects_bad_hidden():
    with pytest.raises(ValueError, match="hidden must be an integer >= 1, got 0"):
        MetaWeightNet(0)


def test_mwnet_look_ahead_leaves_batch_norm_buffers_alone():
    model = _bn_model().train()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    xv, yv = torch.randn(5, 1, 6, 6, generator=g), torch.randint(0, 3, (5,), generator=g)
    reference = _bn_model().train()
    reference(x)
    vnet = MetaWeightNet()
    mwnet_step(model, torch.optim.SGD(model.parameters(), lr=0.01), vnet, torch.optim.Adam(vnet.parameters()),
               x, y, xv, yv)
    torch.testing.assert_close(model[1].running_var, reference[1].running_var)
    assert int(model[1].num_batches_tracked) == 1


# ------------------------------------------------------------------ confident learning
def _blobs(seed=0, n=600, c=3, rate=0.2):
    """Well-separated Gaussian blobs with ``rate`` of the labels flipped to another class (planted)."""
    g = torch.Generator().manual_seed(seed)
    y_true = torch.arange(n) % c
    centres = 4.0 * torch.tensor([[math.cos(2 * math.pi * k / c), math.sin(2 * math.pi * k / c)] for k in range(c)])
    x = centres[y_true] + torch.randn(n, 2, generator=g)
    flip = torch.rand(n, generator=g) < rate
    shift = torch.randint(1, c, (n,), generator=g)
    y = torch.where(flip, (y_true + shift) % c, y_true)
    return x, y, flip


def test_confident_learning_finds_planted_flips_with_logistic_regression():
    pytest.importorskip("cleanlab")
    from sklearn.linear_model import LogisticRegression

    from lilaw_edu.training.methods.confident import cross_fit_probabilities, detection_quality, find_label_issues

    x, y, flipped = _blobs()

    def fit_predict(train_idx, held_idx, fold):
        clf = LogisticRegression(max_iter=500).fit(x[train_idx].numpy(), y[train_idx].numpy())
        return torch.as_tensor(clf.predict_proba(x[held_idx].numpy()))

    probs = cross_fit_probabilities(y, 3, fit_predict, folds=5, seed=0)
    assert not torch.isnan(probs).any()
    quality = detection_quality(find_label_issues(y, probs), flipped)
    # measured: 109 planted flips, 104 flagged, recall 0.954, precision 1.000 (seed 0)
    assert quality["corrupted"] == int(flipped.sum())
    assert quality["recall"] >= 0.85 and quality["precision"] >= 0.85, quality


def test_confident_learning_harness_path_finds_planted_flips():
    pytest.importorskip("cleanlab")
    from lilaw_edu.training.config import config_from_preset
    from lilaw_edu.training.methods.confident import (cross_fit_probabilities, detection_quality,
                                                       find_label_issues, network_fit_predict)

    x, y, flipped = _blobs(seed=1)
    config = config_from_preset(None, batch_size=32, lr=1e-2, device="cpu", seed=1)

    def make_model():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
        return model, torch.optim.Adam(model.parameters(), lr=config.lr)

    fit_predict = network_fit_predict(make_model, x, y, config, torch.device("cpu"), epochs=5)
    probs = cross_fit_probabilities(y, 3, fit_predict, folds=5, seed=1)
    quality = detection_quality(find_label_issues(y, probs), flipped)
    assert quality["recall"] >= 0.8 and quality["precision"] >= 0.8, quality


def test_confident_learning_runs_in_a_spawned_worker():
    """Sweep workers are spawned processes: cleanlab's multiprocessing path failed there (NameError)."""
    pytest.importorskip("cleanlab")
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from lilaw_edu.training.methods.confident import find_label_issues

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (500,), generator=g)
    probs = torch.softmax(3.0 * torch.randn(500, 10, generator=g), 1)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        flagged = pool.submit(find_label_issues, y, probs).result()
    assert torch.equal(flagged, find_label_issues(y, probs)) and 0 < int(flagged.sum()) < 500


def test_confident_learning_rejects_bad_arguments():
    from lilaw_edu.training.methods.confident import cross_fit_probabilities, find_label_issues, fold_epochs

    with pytest.raises(ValueError, match="folds must be an integer in"):
        cross_fit_probabilities(torch.zeros(10, dtype=torch.long), 2, None, folds=1)
    with pytest.raises(ValueError, match="filter_by must be one of"):
        find_label_issues(torch.zeros(3, dtype=torch.long), torch.ones(3, 2) / 2, filter_by="nope")
    with pytest.raises(ValueError, match=r"cl_fold_epochs\) must be in \(0, 1\], got 0"):
        fold_epochs(10, 0)
    assert fold_epochs(30, 0.5) == 15 and fold_epochs(3, 0.1) == 1


# ------------------------------------------------------------------ in the harness
def test_relatives_are_methods_with_paper_defaults():
    from lilaw_edu.training.config import TrainConfig, config_from_preset, method_overrides, resolve_methods

    assert resolve_methods("baseline,lilaw,l2rw,mwnet,cleanlab") == ("baseline", "lilaw", "l2rw", "mwnet", "cleanlab")
    assert method_overrides("cleanlab") == {"weighting": "none", "label_filter": "cleanlab"}
    c = TrainConfig()
    assert (c.mwnet_hidden, c.mwnet_lr, c.mwnet_wd, c.cl_folds, c.cl_filter_by) == \
        (100, 1e-3, 1e-4, 5, "prune_by_noise_rate")
    for field, value, message in (("cl_folds", 1, "cl_folds"), ("cl_fold_epochs", 1.5, "cl_fold_epochs must be in"),
                                  ("mwnet_lr", 0.0, "mwnet_lr"), ("label_filter", "x", "label_filter must be one of"),
                                  ("cl_filter_by", "x", "cl_filter_by must be one of")):
        with pytest.raises(ValueError, match=message):
            config_from_preset(None, **{field: value})


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    from lilaw_edu.training.config import config_from_preset
    from lilaw_edu.training.fit import fit

    config = config_from_preset("cpu-ecg5000", noise="uniform", rate=0.3, max_train=64, epochs=2, batch_size=32,
                                cl_folds=2)
    out = tmp_path_factory.mktemp("relatives")
    return config, out, fit(config, methods="baseline,l2rw,mwnet,cleanlab", out_dir=out, progress=False)


def test_relatives_train_in_the_harness(tiny_fit):
    _, _, results = tiny_fit
    runs = results["methods"]
    for method in ("baseline", "l2rw", "mwnet", "cleanlab"):
        assert 0 <= runs[method]["metrics"]["test"]["top1"] <= 1
        assert runs[method]["init_state_sha256"] == runs["baseline"]["init_state_sha256"]
    info = runs["cleanlab"]["label_filter"]
    assert info["kept"] + info["flagged"] == 64 and info["fold_epochs"] == 1
    assert info["corrupted"] > 0 and info["true_positives"] <= min(info["flagged"], info["corrupted"])


def test_mwnet_checkpoint_holds_the_weighting_net(tiny_fit):
    import copy

    from lilaw_edu.training import checkpoint as ckpt
    from lilaw_edu.training.fit import prepare_data
    from lilaw_edu.training.loop import build_run, initial_model

    config, _, _ = tiny_fit
    splits, noise_info = prepare_data(config)
    init = initial_model(config, splits, noise_info.get("batch_resize")).state_dict()
    run = build_run(config, "mwnet", splits, init, noise_info)
    state = copy.deepcopy(run.capture(ckpt.LoopState(method="mwnet", config=run.config.to_dict())))
    assert set(state.peer) == {"vnet", "optimizer"}
    before = copy.deepcopy(run.reweighter.vnet.state_dict())
    with torch.no_grad():
        for p in run.reweighter.vnet.parameters():
            p.add_(1.0)
    run.restore(state)
    for k, v in run.reweighter.vnet.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_overhead_benchmark_runs_the_relatives():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.variants import PEER_VARIANTS, VariantRunner
    from benchmarks.workloads import init_state, load_workload

    workload = load_workload("small_cnn_28", "quick", synthetic=True)
    state = init_state(workload)
    for variant in PEER_VARIANTS:
        runner = VariantRunner(variant, workload, state, torch.device("cpu"))
        before = [p.detach().clone() for p in runner.model.parameters()]
        wall, cpu = runner.run_epoch()
        assert wall > 0 and cpu > 0
        assert any(not torch.equal(a, p) for a, p in zip(before, runner.model.parameters())), variant
    assert runner.fold_epochs == 2  # cleanlab: f (K - 1) = 0.5 * 4 full-data epochs per training epoch
