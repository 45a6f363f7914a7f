"""Cheaper meta steps (issue 13): k, r, meta-lr scaling, fused forward, CUDA-only options on CPU.

Every training test compares :func:`engine.train_one_epoch` with an independent loop written
here (the Algorithm 1 loop as it was before issue 13) or with itself under other options.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lilaw_edu.core.weighting import LiLAW
from lilaw_edu.models import build_model
from lilaw_edu.training import engine
from lilaw_edu.training.config import config_from_preset, method_overrides
from lilaw_edu.training.meta_schedule import (check_fusable, effective_meta_lr, fused_forward, meta_due,
                                              meta_val_batch_size, training_dependent_modules)

N_TRAIN, N_VAL, B, T = 56, 40, 8, 24  # 7 training steps per epoch


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(N_TRAIN, 1, T, generator=g), torch.randint(0, 3, (N_TRAIN,), generator=g)
    xv, yv = torch.randn(N_VAL, 1, T, generator=g), torch.randint(0, 3, (N_VAL,), generator=g)
    return x, y, xv, yv


def _setup(seed: int = 0, **overrides):
    """LSTM, Adam, LiLAW, batches and generators as the training loop builds them."""
    config = config_from_preset(None, batch_size=B, device="cpu", **overrides)
    torch.manual_seed(seed)
    model = build_model("lstm", 3, in_channels=1, input_size=T)
    x, y, xv, yv = _data(seed)
    lilaw = LiLAW(meta_lr=effective_meta_lr(config))
    gens = {name: engine.make_generator(seed, name) for name in ("shuffle", "augment", "meta")}
    train = engine.Batches(x, y, B, torch.device("cpu"))
    val = engine.Batches(xv, yv, 1024, torch.device("cpu"))
    return config, model, torch.optim.Adam(model.parameters(), lr=1e-3), lilaw, train, val, gens


def _epoch(config, model, opt, lilaw, train, val, gens, step_offset=0):
    return engine.train_one_epoch(model, opt, train, lilaw=lilaw, weighted=True, meta=True, val=val,
                                  generators=gens, config=config, device=torch.device("cpu"),
                                  step_offset=step_offset)


def _state(model, lilaw):
    return {**{k: v.clone() for k, v in model.state_dict().items()},
            **{k: v.detach().clone() for k, v in lilaw.state_dict().items()}}


def _assert_identical(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------ k = 1, r = 1 is today's loop
def test_defaults_reproduce_the_algorithm_1_loop_bit_for_bit():
    config, model, opt, lilaw, train, val, gens = _setup()
    assert (config.meta_every, config.meta_val_divisor, config.meta_lr_scale_with_k) == (1, 1, False)
    _, model2, opt2, lilaw2, train2, val2, gens2 = _setup()
    for _ in range(2):
        _epoch(config, model, opt, lilaw, train, val, gens)
        # the loop before issue 13, written out: step, then a meta step on a random batch of B samples
        for x, y, _ in train2.epoch(gens2["shuffle"]):
            loss = lilaw2(model2(x), y)
            opt2.zero_grad(set_to_none=True)
            loss.backward()
            opt2.step()
            idx = torch.randperm(val2.n, generator=gens2["meta"])[:B]
            model2.eval()
            with torch.no_grad():
                val_logits = model2(val2.x[idx])
            model2.train()
            lilaw2.meta_step(val_logits, val2.y[idx], sync=False)
    _assert_identical(_state(model, lilaw), _state(model2, lilaw2))
    assert lilaw.state() != {"alpha": 10.0, "beta": 2.0, "delta": 6.0}  # the meta steps did move them


def test_cuda_only_options_are_exact_no_ops_on_cpu():
    runs = []
    for flags in ({}, {"meta_cuda_stream": True, "meta_cuda_graph": True}):
        config, model, opt, lilaw, train, val, gens = _setup(meta_every=2, **flags)
        stats = [_epoch(config, model, opt, lilaw, train, val, gens, step_offset=7 * e) for e in range(2)]
        runs.append((_state(model, lilaw), [s["meta_steps"] for s in stats]))
    _assert_identical(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


# ------------------------------------------------------------------ k: how often
def _record_meta_steps(lilaw, opt):
    """Wrap ``opt.step`` and ``lilaw.meta_step``: the optimiser step count at every meta step, batch sizes."""
    log = {"steps": 0, "meta_after": [], "val_sizes": []}
    step, meta_step = opt.step, lilaw.meta_step

    def counted_step(*args, **kwargs):
        log["steps"] += 1
        return step(*args, **kwargs)

    def recorded_meta_step(val_logits, val_targets, **kwargs):
        log["meta_after"].append(log["steps"])
        log["val_sizes"].append(int(val_targets.shape[0]))
        return meta_step(val_logits, val_targets, **kwargs)

    opt.step, lilaw.meta_step = counted_step, recorded_meta_step
    return log


@pytest.mark.parametrize("k, offset, expected", [(1, 0, [1, 2, 3, 4, 5, 6, 7]), (2, 0, [2, 4, 6]),
                                                 (2, 7, [1, 3, 5, 7]), (4, 0, [4]), (8, 0, []), (8, 7, [1])])
def test_meta_every_k_runs_exactly_after_every_kth_step_of_the_run(k, offset, expected):
    config, model, opt, lilaw, train, val, gens = _setup(meta_every=k)
    log = _record_meta_steps(lilaw, opt)
    stats = _epoch(config, model, opt, lilaw, train, val, gens, step_offset=offset)
    assert stats["steps"] == 7
    assert log["meta_after"] == expected  # optimiser steps of this epoch after which a meta step ran
    assert stats["meta_steps"] == len(expected)
    assert all(meta_due(offset + s, k) for s in expected)


def test_k2_over_three_epochs_counts_every_second_step():
    config, model, opt, lilaw, train, val, gens = _setup(meta_every=2)
    log = _record_meta_steps(lilaw, opt)
    total = sum(_epoch(config, model, opt, lilaw, train, val, gens, step_offset=7 * e)["meta_steps"]
                for e in range(3))
    assert total == 21 // 2 == 10
    assert log["meta_after"] == list(range(2, 22, 2))


def test_meta_lr_scaled_by_k_only_when_asked():
    assert effective_meta_lr(config_from_preset(None, meta_every=4)) == pytest.approx(0.005)
    assert effective_meta_lr(config_from_preset(None, meta_every=4, meta_lr_scale_with_k=True)) == \
        pytest.approx(0.02)
    cheap = config_from_preset(None, **method_overrides("lilaw-cheap"))
    assert (cheap.meta_every, cheap.meta_val_divisor, cheap.meta_lr_scale_with_k) == (4, 2, True)


def test_build_run_gives_lilaw_the_scaled_meta_lr():
    from lilaw_edu.training.fit import prepare_data
    from lilaw_edu.training.loop import build_run, initial_model
    config = config_from_preset("cpu-digits", epochs=1, max_train=100, meta_every=3, meta_lr_scale_with_k=True)
    splits, info = prepare_data(config)
    run = build_run(config, "lilaw", splits, initial_model(config, splits).state_dict(), info)
    assert run.lilaw.meta_lr == pytest.approx(3 * config.meta_lr)


# ------------------------------------------------------------------ r: how much validation data
@pytest.mark.parametrize("r, expected", [(1, 8), (2, 4), (3, 3), (8, 1)])
def test_meta_val_divisor_sizes_the_validation_batch(r, expected):
    config, model, opt, lilaw, train, val, gens = _setup(meta_val_divisor=r)
    assert meta_val_batch_size(config) == expected == math.ceil(B / r)
    log = _record_meta_steps(lilaw, opt)
    _epoch(config, model, opt, lilaw, train, val, gens)
    assert log["val_sizes"] == [expected] * 7


def test_val_batch_size_still_wins_and_conflicts_with_a_divisor():
    assert meta_val_batch_size(config_from_preset(None, batch_size=32, val_batch_size=5)) == 5
    with pytest.raises(ValueError, match=r"meta_val_divisor must be 1 when val_batch_size is set.*got "
                                         r"meta_val_divisor=2, val_batch_size=5"):
        config_from_preset(None, val_batch_size=5, meta_val_divisor=2)


@pytest.mark.parametrize("field, value, error", [
    ("meta_every", 0, ValueError), ("meta_every", 1.5, TypeError), ("meta_every", True, TypeError),
    ("meta_val_divisor", 0, ValueError), ("meta_val_divisor", "2", TypeError),
    ("meta_lr_scale_with_k", 1, TypeError), ("meta_fused_forward", "yes", TypeError),
    ("meta_cuda_stream", 0.5, TypeError), ("meta_cuda_graph", 0, TypeError)])
def test_bad_lever_values_are_refused_naming_the_field(field, value, error):
    with pytest.raises(error, match=field):
        config_from_preset(None, **{field: value})


# ------------------------------------------------------------------ fused forward
# float32 absolute tolerance. Measured on this CPU (torch 2.14, 1 thread, 5 seeds): max |fused - separate| is
# 2.2e-8 for the LSTM (its GEMMs block differently at batch 13 than at 8 or 5) and exactly 0 for the tiny ViT.
FUSED_ATOL = 1e-5


def _tiny_vit():
    from torchvision.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    return VisionTransformer(image_size=8, patch_size=4, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                             num_classes=3)


@pytest.mark.parametrize("name", ["lstm", "vit"])
def test_fused_forward_equals_separate_forwards(name):
    torch.manual_seed(1)
    if name == "lstm":
        model, x, x_val = build_model("lstm", 3, in_channels=1, input_size=T), torch.randn(8, 1, T), \
            torch.randn(5, 1, T)
    else:
        model, x, x_val = _tiny_vit(), torch.randn(8, 3, 8, 8), torch.randn(5, 3, 8, 8)
    check_fusable(model.train(), "eval")
    logits, val_logits = fused_forward(model, x, x_val)
    assert logits.shape == (8, 3) and val_logits.shape == (5, 3)
    assert logits.requires_grad and not val_logits.requires_grad
    torch.testing.assert_close(logits, model(x), atol=FUSED_ATOL, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(val_logits, model.eval()(x_val), atol=FUSED_ATOL, rtol=0)
    plain, none = fused_forward(model, x, None)
    assert none is None and torch.equal(plain, model(x))


def test_fused_forward_refuses_batch_norm_and_eval_mode_dropout():
    cnn = build_model("small_cnn", 2, in_channels=1, input_size=28)
    assert training_dependent_modules(cnn)["batch_norm"]
    with pytest.raises(ValueError, match=r"meta_fused_forward=True needs a model without batch norm.*SmallCNN"):
        check_fusable(cnn, "train")
    dropout = nn.Sequential(nn.Flatten(), nn.Linear(4, 4), nn.Dropout(0.1), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"meta_val_mode='eval'.*dropout.*\['2'\]"):
        check_fusable(dropout, "eval")
    check_fusable(dropout, "train")  # train-mode validation forward: dropout applies either way
    check_fusable(nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(4, 2)), "eval")


def test_fit_with_fused_forward_refuses_a_batch_norm_model_before_training():
    from lilaw_edu.training.fit import fit
    with pytest.raises(ValueError, match="needs a model without batch norm"):
        fit(config_from_preset("cpu-digits", epochs=1, max_train=100, meta_fused_forward=True), ("lilaw",),
            progress=False)


def test_fused_training_equals_a_loop_with_pre_step_validation_logits():
    """Fused: the meta step sees the validation logits of the parameters before the optimiser step."""
    config, model, opt, lilaw, train, val, gens = _setup(meta_fused_forward=True, meta_val_mode="train",
                                                         meta_every=2)
    _, model2, opt2, lilaw2, train2, val2, gens2 = _setup()
    stats = _epoch(config, model, opt, lilaw, train, val, gens)
    for step, (x, y, _) in enumerate(train2.epoch(gens2["shuffle"]), start=1):
        due = step % 2 == 0
        if due:
            idx = torch.randperm(val2.n, generator=gens2["meta"])[:B]
            val_logits = model2(val2.x[idx]).detach()  # train mode, before the step
        loss = lilaw2(model2(x), y)
        opt2.zero_grad(set_to_none=True)
        loss.backward()
        opt2.step()
        if due:
            lilaw2.meta_step(val_logits, val2.y[idx], sync=False)
    assert stats["meta_steps"] == 3
    a, b = _state(model, lilaw), _state(model2, lilaw2)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=FUSED_ATOL, rtol=0)


# ------------------------------------------------------------------ the chapter's figure
def test_plot_cheap_meta_draws_the_frontier_and_the_variance_panel():
    import matplotlib
    matplotlib.use("Agg")
    from lilaw_edu.experiments.plots import plot_cheap_meta
    points = [dict(dataset="ecg5000", method="lilaw", time_ratio=1.3, mean=0.0, ci_low=float("nan"),
                   ci_high=float("nan"), n=5),
              dict(dataset="ecg5000", method="lilaw-cheap", time_ratio=1.05, mean=0.2, ci_low=-0.4, ci_high=0.8, n=5)]
    variance = {"dataset": "ecg5000", "draws": 10, "divisors": [1, 2],
                "epochs": {"2": {"by_r": {"1": {"batch_size": 32, "variance": 1e-4, "predicted_variance": 1e-4},
                                          "2": {"batch_size": 16, "variance": 3e-4, "predicted_variance": 2.9e-4}}}}}
    fig = plot_cheap_meta(points, variance)
    left, right = fig.axes
    assert len(left.containers) == 2  # one errorbar per point
    assert sorted(float(c.lines[0].get_ydata()[0]) for c in left.containers) == [0.0, 0.2]
    assert [tuple(line.get_ydata()) for line in right.lines][:1] == [(1e-4, 3e-4)]
    assert len(plot_cheap_meta(points).axes) == 1
